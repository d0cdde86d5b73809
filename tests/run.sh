#!/usr/bin/env bash
# The test suite: ansible-lint, ansible-test sanity, unit tests, Molecule. `tests/run.sh STAGE`
# runs one stage. Every stage runs even if an earlier one failed; the exit code says if any did.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bin=$top/.venv/bin
export PATH=$bin:$PATH ANSIBLE_CONFIG=$top/ansible.cfg
stages=("${@:-lint sanity unit molecule}")
read -r -a stages <<< "${stages[*]}"
failed=()

run_stage() {
  local name=$1; shift
  echo "=== $name"
  local started=$SECONDS
  if "$@"; then
    echo "=== $name: passed in $((SECONDS - started)) s"
  else
    echo "=== $name: FAILED in $((SECONDS - started)) s"
    failed+=("$name")
  fi
}

lint() { ansible-lint --profile production; }

# ansible-test wants the collection at .../ansible_collections/hosting/migration: copy the files
# git knows (tracked and new, not ignored) there.
sanity() {
  local tmp version
  # ansible-test bootstraps pip in its venvs with a script from a host this machine cannot reach.
  version=$(python -c 'import re, ansible_test._internal.python_requirements as r
print(re.search(r"pip=.([0-9.]+).", open(r.__file__).read()).group(1).replace(".", "_"))')
  mkdir -p ~/.ansible/test/cache
  cp tests/sanity/get_pip_bootstrap.py ~/.ansible/test/cache/get_pip_"$version".py
  tmp=$(mktemp -d)
  trap "rm -rf $tmp" RETURN
  local dest=$tmp/ansible_collections/hosting/migration
  mkdir -p "$dest"
  git ls-files -co --exclude-standard -z | xargs -0 -I{} cp --parents -P {} "$dest"/ 2>/dev/null
  (cd "$dest" && git init -q && git add -A \
    && ansible-test sanity --venv --python 3.11 --color no --exclude lab/ --exclude tests/ --exclude bench/ \
      --exclude extensions/ --exclude .ci/ --exclude Makefile)
}

# The state store's tests run on SQLite and on a PostgreSQL cluster started here.
unit() {
  local pg_dir=/tmp/hosting-migration-test-pg rc=0
  HOSTING_TEST_PG_DSN=$(tests/pg-cluster.sh start "$pg_dir" 55432) || { echo "could not start PostgreSQL for the unit tests"; return 1; }
  export HOSTING_TEST_PG_DSN
  pytest -q -rs tests/unit || rc=$?
  tests/pg-cluster.sh stop "$pg_dir"
  unset HOSTING_TEST_PG_DSN
  return $rc
}

# The scenarios make test runs, in this order (each replaces the lab with a fresh one). Set
# MOLECULE_SCENARIOS to run others, e.g. MOLECULE_SCENARIOS="cutover required".
scenarios=(${MOLECULE_SCENARIOS:-lab move faults transit cutover required service_update})

# Each scenario's output is also kept in $logs; for a failed one, the tasks that failed are
# repeated at the very end of the run, where a CI log's tail shows them.
logs=${TEST_LOG_DIR:-$top/tests/output/logs}
failures=()

molecule_stage() {
  local scenario rc=0 started
  mkdir -p "$logs"
  for scenario in "${scenarios[@]}"; do
    started=$SECONDS
    if molecule test -s "$scenario" 2>&1 | tee "$logs/molecule-$scenario.log"; then
      echo "=== molecule $scenario: passed in $((SECONDS - started)) s"
    else
      echo "=== molecule $scenario: FAILED in $((SECONDS - started)) s"
      failures+=("$scenario")
      rc=1
    fi
  done
  return $rc
}

# The failed tasks of a scenario's log: each "fatal:"/"failed:" line with what follows it.
show_failures() {
  local scenario
  for scenario in "${failures[@]}"; do
    echo "=== what failed in molecule $scenario (whole log: $logs/molecule-$scenario.log)"
    sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^ *│ \{0,1\}//' "$logs/molecule-$scenario.log" \
      | grep -E -B 3 -A 30 '^(fatal|failed): ' | cut -c1-400 | tail -n 120
  done
}

for stage in "${stages[@]}"; do
  case $stage in
    lint) run_stage lint lint ;;
    sanity) run_stage sanity sanity ;;
    unit) run_stage unit unit ;;
    molecule) run_stage molecule molecule_stage ;;
    *) echo "unknown stage $stage (lint, sanity, unit, molecule)"; exit 2 ;;
  esac
done

if [ "${#failed[@]}" -gt 0 ]; then
  show_failures
  echo "FAILED stages: ${failed[*]}"
  exit 1
fi
echo "all stages passed: ${stages[*]}"
