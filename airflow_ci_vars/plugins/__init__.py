"""What the provider adds to Airflow's components: the api-server permission gate (``gate``)."""
