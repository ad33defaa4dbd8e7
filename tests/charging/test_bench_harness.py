import pytest

from charging.bench.harness import build_bench_company, hot_row_baseline, run_concurrently
from enterprise.models import CostCentre
from enterprise.selectors import cost_centre_path
from tests.services import require_postgres


@pytest.mark.django_db
def test_bench_company_puts_every_line_under_a_four_level_tree():
    bench = build_bench_company(lines=40, fanout=(2, 2, 2))

    nodes = CostCentre.objects.filter(company=bench.company)
    assert nodes.count() == 1 + 2 + 4 + 8 + 40
    assert nodes.filter(kind="device").count() == 40
    path = cost_centre_path(line_id=bench.line_ids[-1])
    assert [node.kind for node in path] == ["company", "division", "department", "team", "device"]
    assert path[0].pk == bench.root_id


@pytest.mark.django_db
def test_bench_company_refuses_lines_that_do_not_spread_evenly():
    with pytest.raises(ValueError, match="do not spread evenly"):
        build_bench_company(lines=41, fanout=(2, 2, 2))


def _count_one(worker: int, op: int) -> int:
    if worker == 0 and op == 0:
        raise RuntimeError("first operation of worker 0 fails")
    return 2


def test_runner_gathers_operations_units_and_errors_from_every_worker():
    result = run_concurrently(operation=_count_one, workers=3, seconds=0.3)

    assert result.errors == 1
    assert "first operation of worker 0 fails" in result.first_error
    assert result.units == 2 * result.ops
    assert len(result.latencies_ms) == result.ops > 3
    assert result.p50_ms <= result.p99_ms


@pytest.mark.django_db(transaction=True)
def test_hot_row_baseline_counts_committed_updates():
    require_postgres()

    assert hot_row_baseline(connections_count=4, seconds=0.3) > 0
