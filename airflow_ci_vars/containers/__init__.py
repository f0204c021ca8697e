"""Container jobs: ``image:`` and ``services:`` run as gitlab-runner's Docker executor runs them.

``plan`` decides (pure); ``docker_runner`` runs a plan on a Docker daemon (the ``docker``
package); ``kubernetes`` writes the same plan as a pod manifest. No Airflow import here.
"""
