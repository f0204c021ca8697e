"""The job keywords, one small module per keyword family, each with its parsing, defaults and GitLab's messages.

R: ``lib/gitlab/ci/config/entry/*.rb`` (one entry per keyword). Every entry returns typed values or
raises ``JobConfigError`` naming the job and the keyword (``VariableValidationError`` for a
``variables:`` entry). ``job.parse_job`` composes them into the one job record (``JobSpec``);
``JobSpec.from_yaml`` and ``build_pipeline`` both call it, so each keyword is parsed once.
"""
