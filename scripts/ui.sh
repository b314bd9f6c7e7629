#!/usr/bin/env bash
# `make ui`: the Airflow UI (airflow standalone) on the demo's Airflow home and data.
# Every DAG starts paused, so opening the UI shows what the demo did without running
# anything; `make ui RUN=1` leaves them to the schedule.
set -euo pipefail
cd "$(dirname "$0")/.."
home=${DEMO_HOME:-var/demo}
eval "$(.venv/bin/hub airflow-env --home "$home")"
export PATH="$PWD/.venv/bin:$PATH"
if [ "${RUN:-0}" = "1" ]; then
  export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
  echo "[ui] DAGs run on their schedules (RUN=1)"
else
  export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True
  airflow db migrate >/dev/null
  airflow dags reserialize >/dev/null 2>&1
  airflow dags pause -y --treat-dag-id-as-regex '.*' >/dev/null
  echo "[ui] every DAG is paused: the UI shows the demo's runs; unpause a DAG in the UI, or use make ui RUN=1"
fi
exec airflow standalone
