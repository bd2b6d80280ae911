"""Results of finished runs: the results.json model, and their sync to GitHub and the runs repo.

Pure parts (Markdown generation, PR <-> qna.yaml mapping, truncation, locations) import only
the standard library and the results model; the edges (`github_api`, `s3_store`,
`git_store`) import PyGithub, boto3 and GitPython, and are imported lazily by the commands.
"""
