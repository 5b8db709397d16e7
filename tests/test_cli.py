import os

from descbench.shell.cli import expand_ranges


def test_inclusive_ranges_are_expanded():
    assert expand_ranges(["-m", "describe.detailed=true,false", "num_desc=1..7"]) == [
        "-m",
        "describe.detailed=true,false",
        "num_desc=1,2,3,4,5,6,7",
    ]


def test_ranges_inside_lists_and_other_args_untouched():
    assert expand_ranges(["num_desc=1..3,7", "hydra.sweep.dir=/tmp/a..b", "x=range(1,8)", "seed=0"]) == [
        "num_desc=1,2,3,7",
        "hydra.sweep.dir=/tmp/a..b",
        "x=range(1,8)",
        "seed=0",
    ]


def test_eval_main_lets_openmp_threads_sleep_unless_the_user_chose(monkeypatch):
    import descbench.eval
    import descbench.shell.config

    seen = []
    monkeypatch.setattr(
        descbench.shell.config, "run_entry", lambda task, name: seen.append(os.environ["OMP_WAIT_POLICY"])
    )
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    descbench.eval.main()
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    descbench.eval.main()
    assert seen == ["PASSIVE", "ACTIVE"]
