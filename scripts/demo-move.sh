#!/usr/bin/env bash
# CLOUDHOP_DEMO=move make demo: the shop app moves from the lab's old cluster (vSphere) to a new
# one (AWS) with its MongoDB replica set, under three probes - every host and path through DNS,
# the same with a DNS answer kept from before the switch (clients that ignore the TTL), and the
# app's writes. Lab up (move world), the link, the lowered TTL (what an operator does days
# before), probes, playbooks/move.yml, probes stop (the writes read back from the primary),
# report summary, lab down. Exits non-zero unless the move succeeded with 0 failed requests,
# 0 failed writes and 0 lost acknowledged writes.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
PY=.venv/bin/python
export PYTHONPATH=$PWD/tests/lab ANSIBLE_CONFIG=$PWD/ansible.cfg
started=$(date +%s)
# the records' TTL is 10 s here (300 s is common in production): the DNS phase waits it out
$PY -m cloudhop_lab up --world move --dns-ttl 10 || exit 1
trap '$PY -m cloudhop_lab down' EXIT
$PY -m cloudhop_lab mongo wait >/dev/null || exit 1
$PY -m cloudhop_lab wait-app --shop || exit 1
# the link between the environments (a VPC peering or site-to-site VPN in a real move)
$PY -m cloudhop_lab link up vsphere aws >/dev/null || exit 1
move() {
  tests/lab/run "$PWD/.venv/bin/ansible-playbook" -i .lab/move playbooks/move.yml "$@"
}
echo "=== days before: the plan and the lowered TTL (--tags move_preflight,move_dns_prepare) ==="
move --tags move_preflight,move_dns_prepare | tail -4 || exit 1
for p in "shop --shop --rate 10" "stale --shop --stale --rate 5" "writes --writes --rate 10"; do
  # shellcheck disable=SC2086
  $PY -m cloudhop_lab probe start --name $p || exit 1
done
move -e cloudhop_confirm_destroy=true \
  -e "{\"move_report_probes\": {\"shop\": \"$PWD/.lab/probe-shop.jsonl\", \"stale\": \"$PWD/.lab/probe-stale.jsonl\", \"writes\": \"$PWD/.lab/probe-writes.jsonl\"}}" "$@"
rc=$?
report=.lab/reports/move-shop/move-report.md
echo
echo "=== move report (full report: $report and .html; kept until the next lab up) ==="
[ -f "$report" ] && sed -n '/^## Phases/,/^## Traffic/p' "$report" | sed '$d'
ok=true
for name in shop stale writes; do
  summary=$($PY -m cloudhop_lab probe stop --name "$name")
  line=$(echo "$summary" | $PY -c '
import json, sys
s = json.load(sys.stdin)
print("%d requests, %d failed%s" % (s["total"], s["failed"], ", %d acknowledged writes, %d lost"
      % (s["acknowledged"], s["lost"]) if "lost" in s else ""))
bad = s["failed"] or s.get("lost", 0)
sys.exit(1 if bad else 0)') || ok=false
  echo "=== probe $name: $line"
done
echo "demo took $(( $(date +%s) - started )) s; exit code $rc"
[ "$rc" -eq 0 ] && $ok
