#!/usr/bin/env bash
# make demo: the lab's vSphere cluster moves to AWS (or CLOUDHOP_DEMO_CLOUD=gcp) under live
# traffic. Lab up, probe start, playbooks/migrate.yml, probe stop, report summary, lab down.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# CLOUDHOP_DEMO=move: the second use case, the app's move to another cluster
[ "${CLOUDHOP_DEMO:-migrate}" = move ] && exec scripts/demo-move.sh "$@"
PY=.venv/bin/python
export PYTHONPATH=$PWD/tests/lab ANSIBLE_CONFIG=$PWD/ansible.cfg
cloud=${CLOUDHOP_DEMO_CLOUD:-aws}
started=$(date +%s)
# the record's TTL is 20 s here (300 s is common in production): the DNS phase waits it out
$PY -m cloudhop_lab up --dns-ttl 20 || exit 1
trap '$PY -m cloudhop_lab down' EXIT
$PY -m cloudhop_lab probe start --rate 20 --wait-ready || exit 1
tests/lab/run "$PWD/.venv/bin/ansible-playbook" -i .lab/nodes.cloudhop.yml -i .lab/user_clusters.yml \
  playbooks/migrate.yml -e cloudhop_target_cloud="$cloud" -e cloudhop_confirm_destroy=true \
  -e report_probe_log="$PWD/.lab/probe.jsonl" "$@"
rc=$?
summary=$($PY -m cloudhop_lab probe stop)
report=.lab/reports/x8p9sk2tzv/migration-report.md
echo
echo "=== migration report (full report: $report and .html; kept until the next lab up) ==="
[ -f "$report" ] && sed -n '/^## Phases/,/^The gates/p' "$report" | sed '$d'
echo "=== probe: requests to http://app.example.test/ from the internet during the whole run ==="
echo "$summary"
echo "demo took $(( $(date +%s) - started )) s; exit code $rc"
failed=$(echo "$summary" | $PY -c 'import json,sys; print(json.load(sys.stdin)["failed"])' 2>/dev/null || echo "?")
[ "$rc" -eq 0 ] && [ "$failed" = "0" ]
