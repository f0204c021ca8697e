"""Pure pipeline model: ``.gitlab-ci.yml`` -> jobs, stages, rules. No Airflow import."""
