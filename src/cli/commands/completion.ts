import type { Argv } from 'yargs';
import type { GlobalOptions } from '../main.js';

/**
 * Shell completion scripts. Each asks gantry for the words that may come next with yargs'
 * completion request (`gantry --get-yargs-completions gantry bu` prints the commands, options
 * and choices at that point; yargs answers it before any command runs), and lets the shell
 * filter them by what was typed. Adapted from yargs' own templates: the words up to the cursor
 * only, gantry called by name (found on PATH), errors discarded.
 */
const BASH = `###-begin-gantry-completions-###
#
# gantry command completion for bash. Load it in a shell with
#   source <(gantry completion bash)
# or for every shell: gantry completion bash > /etc/bash_completion.d/gantry (or >> ~/.bashrc)
#
_gantry_completions()
{
    local cur_word type_list
    local -a args
    cur_word="\${COMP_WORDS[COMP_CWORD]}"
    args=("\${COMP_WORDS[@]:0:COMP_CWORD+1}")

    mapfile -t type_list < <(gantry --get-yargs-completions "\${args[@]}" 2>/dev/null)
    mapfile -t COMPREPLY < <(compgen -W "$( printf '%q ' "\${type_list[@]}" )" -- "\${cur_word}" |
        awk '/ / { print "\\""$0"\\"" } /^[^ ]+$/ { print $0 }')
    return 0
}
complete -o bashdefault -o default -F _gantry_completions gantry
###-end-gantry-completions-###
`;

const ZSH = `#compdef gantry
###-begin-gantry-completions-###
#
# gantry command completion for zsh. Load it in a shell with
#   source <(gantry completion zsh)
# or save it as _gantry in a directory of $fpath.
#
_gantry_completions()
{
  local reply
  local si=$IFS
  IFS=$'\\n' reply=($(SHELL=zsh COMP_CWORD="$((CURRENT-1))" COMP_LINE="$BUFFER" COMP_POINT="$CURSOR" gantry --get-yargs-completions "\${(@)words[1,CURRENT]}" 2>/dev/null))
  IFS=$si
  if [[ \${#reply} -gt 0 ]]; then
    _describe 'values' reply
  else
    _default
  fi
}
if [[ "\${zsh_eval_context[-1]}" == "loadautofunc" ]]; then
  _gantry_completions "$@"
else
  compdef _gantry_completions gantry
fi
###-end-gantry-completions-###
`;

export const COMPLETION_SCRIPTS = { bash: BASH, zsh: ZSH } as const;

export function completionCommand(yargs: Argv<GlobalOptions>): Argv<GlobalOptions> {
  return yargs.command<GlobalOptions & { shell?: 'bash' | 'zsh' }>(
    'completion [shell]',
    'Print a shell completion script (bash or zsh)',
    (y) =>
      y.positional('shell', {
        type: 'string',
        choices: ['bash', 'zsh'],
        describe: "the shell (default: $SHELL's, else bash)",
      }) as never,
    async (argv) => {
      const shell = argv.shell ?? (/(^|\/)zsh$/.test(process.env.SHELL ?? '') ? 'zsh' : 'bash');
      process.stdout.write(COMPLETION_SCRIPTS[shell]);
    },
  );
}
