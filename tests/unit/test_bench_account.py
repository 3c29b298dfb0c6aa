"""The CPU account splits twice the steady span into the jobs' CPU and what it lost."""

from bench.peers.account import Loss, losses


def test_the_span_splits_into_jobs_edges_gaps_and_preemption() -> None:
    # Two processes, jobs of 10 ns CPU; the steady span runs from 0 to 40.
    rows = {"1": [(12, 24), (0, 10)], "2": [(5, 15), (15, 25), (30, 40)]}

    split = losses(rows, spin_ns=10)

    assert split == {
        "1": Loss(jobs=2, edges=16, gaps=2, preempted=2),
        "2": Loss(jobs=3, edges=5, gaps=5, preempted=0),
    }
    jobs_cpu = 5 * 10
    lost = sum(loss.edges + loss.gaps + loss.preempted for loss in split.values())
    assert jobs_cpu + lost == 2 * (40 - 0)
