import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // fixtures/ holds other projects' files, built as test inputs, not gantry's code.
  { ignores: ['dist/', 'dist-bench/', 'node_modules/', 'scratch/', 'coverage/', 'fixtures/', '.walk-*/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-control-regex': 'off',
    },
  },
);
