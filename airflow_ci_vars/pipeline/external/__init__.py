"""Where included files come from: every ``include:`` kind other than ``local``, without a GitLab server.

GitLab resolves ``include:project``, ``component``, ``template`` and ``remote`` against its own
database and repositories (R: ``lib/gitlab/ci/config/external/file/*.rb``); a deployment of this
provider has none, so each kind reads from a source the deployment already has:

- ``git_repo``: git repositories (``include:project``, ``include:component``), read at a ref
  through a local, commit-keyed cache of bare mirrors with the real ``git`` client;
- ``remote``: HTTP(S) (``include:remote``), fetched once into an on-disk cache refreshed on a TTL;
- ``component``: a component address and its version, resolved as GitLab resolves them;
- ``sources``: the deployment's configuration of all of these (``IncludeSources``).

Nothing here imports Airflow; credentials arrive resolved from the Airflow shell.
"""
