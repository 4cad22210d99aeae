import type { CheckFile } from './types.js';

const file = 'dockerfile_secrets_test.go';

/** The secret BuildKit's tests give (`secretsprovider.FromMap({mysecret: "pw"})`). */
const secret = { args: ['--secret', 'id=mysecret,src={work}/mysecret'], workFiles: { mysecret: 'pw' } };

const asEnviron = `
FROM busybox
ENV SECRET_ENV=foo
RUN --mount=type=secret,id=mysecret,env=SECRET_ENV [ "$SECRET_ENV" == "pw" ] && [ ! -f /run/secrets/mysecret ] || false
`;

export default {
  file,
  checks: [
    {
      name: 'testSecretFileParams',
      file,
      // No id: it is the target's base name, mysecret.
      dockerfile: `
FROM busybox
RUN --mount=type=secret,required=false,mode=741,uid=100,gid=102,target=/mysecret [ "$(stat -c "%u %g %f" /mysecret)" = "100 102 81e1" ]
RUN [ ! -f /mysecret ] # check no stub left behind
`,
      ...secret,
      absent: ['mysecret'],
    },
    {
      name: 'testSecretRequiredWithoutValue',
      file,
      dockerfile: 'FROM busybox \n\t\tRUN --mount=type=secret,required,id=mysecret foo',
      // BuildKit: "secret mysecret: not found"; gantry words it its own way, naming the secret.
      error: /secret "?mysecret"?:? (not found|is required but was not given)/,
    },
    {
      name: 'testSecretAsEnviron',
      file,
      // The RUN sees the secret as $SECRET_ENV (over the ENV) and no file; its value is not shown.
      dockerfile: asEnviron,
      ...secret,
      notOutput: [/"pw" == "pw"/],
    },
    {
      name: 'testSecretAsEnviron',
      file,
      // BuildKit's step name expands the command's variables, the secret one masked: `[ "****" == "pw" ] && `.
      dockerfile: asEnviron,
      ...secret,
      output: [/RUN [^\n]*\[ "\*\*\*\*" == "pw" \] && [^\n]*\/run\/secrets\/mysecret/],
      gap: 'step names show the RUN command as written ("$SECRET_ENV"), not expanded with the secret masked as ****',
    },
    {
      name: 'testSecretAsEnvironWithFileMount',
      file,
      dockerfile: `
FROM busybox
RUN --mount=type=secret,id=mysecret,target=/run/secrets/secret,env=SECRET_ENV [ "$SECRET_ENV" == "pw" ] && [ -f /run/secrets/secret ] || false
`,
      ...secret,
    },
  ],
  notPorted: [],
} satisfies CheckFile;
