// Runs a workflow's actions/github-script `script:` the way github-script v7 does: the body
// of an async function given `require`, `github` (getOctokit from @actions/github 6: REST
// methods and paginate), `context` and `core`. The API base URL, repository and token come
// from GITHUB_API_URL, GITHUB_REPOSITORY and GITHUB_TOKEN, as on a runner.
//   node run_github_script.cjs SCRIPT_FILE
'use strict';
const fs = require('fs');
const core = require('@actions/core');
const { context, getOctokit } = require('@actions/github');

const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;

async function main() {
  const source = fs.readFileSync(process.argv[2], 'utf8');
  const github = getOctokit(process.env.GITHUB_TOKEN);
  const fn = new AsyncFunction('require', 'github', 'context', 'core', source);
  await fn(require, github, context, core);
}

main().catch((err) => {
  core.setFailed(`unhandled error: ${err && err.message ? err.message : err}`);
});
