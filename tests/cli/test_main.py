"""``ald-tune`` itself: --version, --help per command, --print-config, refused flags."""

from __future__ import annotations

import argparse
import re

import pytest

from ald_tune.cli.main import main

TINY = [
    "--set",
    "train.epochs=6",
    "--set",
    "ald.window=4",
    "--set",
    "ald.patience=2",
    "--set",
    "model.hidden=[32, 32]",
    "--set",
    "ald.n_z_init=10",
    "--set",
    "eval.n_fid=40",
]


def test_version(capsys):
    from ald_tune._version import __version__

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"ald-tune {__version__}"


@pytest.mark.parametrize(
    "command", [["train"], ["ald"], ["grid"], ["compare"], ["optuna", "--mode", "grid"]]
)
def test_print_config_prints_the_resolved_config_and_starts_nothing(command, capsys, monkeypatch):
    import yaml

    from ald_tune.config.schema import load_config
    from ald_tune.sweeps import tuner as tuners

    def tripwire(*a, **k):
        raise AssertionError("--print-config started Ray")

    monkeypatch.setattr(tuners, "init_ray", tripwire)
    args = [
        "--space",
        "search_spaces/digits.yaml",
        "--preset",
        "paper",
        "--set",
        "train.epochs=7",
        "--set",
        "grid.n_z=[3, 5]",
    ]
    assert main([*command, *args, "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    want = load_config("search_spaces/digits.yaml", "paper", ["train.epochs=7", "grid.n_z=[3, 5]"])
    assert printed == want.to_dict() and printed["ald"]["rule"] == "paper"


def test_compare_help_is_its_own(capsys):
    with pytest.raises(SystemExit) as e:
        main(["compare", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and out.startswith("usage: ald-tune compare")
    assert "ald_tune/run.py" not in out and "{compare,ald,grid}" not in out
    assert "--rules" in out and "--no-fixed" in out and "--print-config" in out


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["ald", "--scheduler", "asha"], r"--scheduler does nothing for ald sweeps.*Fix: drop"),
        (["compare", "--no-such-flag"], r"unrecognized arguments: --no-such-flag"),
    ],
)
def test_flags_that_do_nothing_are_refused(argv, pattern, capsys, tmp_path):
    try:
        rc = main([*argv, "--run-dir", str(tmp_path)])
    except SystemExit as e:  # argparse's own refusal
        rc = e.code
    assert rc == 2 and re.search(pattern, capsys.readouterr().err, re.S)
    assert not (tmp_path / "ray").exists()


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["ald", "--out", "x"], r"--out applies to the compare mode, not ald"),
        (["ald", "--no-fixed"], r"--no-fixed applies to the compare mode, not ald"),
        (["grid", "--out", "x"], r"--out applies to the compare mode, not grid"),
        (
            ["ald", "--scheduler", "asha"],
            r"--scheduler applies to the grid and compare modes, not ald",
        ),
    ],
)
def test_run_py_refuses_flags_of_other_modes(argv, pattern, capsys, tmp_path):
    from ald_tune.cli import compare as run

    assert run.main([*argv, "--run-dir", str(tmp_path)]) == 2
    assert re.search(pattern, capsys.readouterr().err)


def test_sigterm_ends_any_command_as_ctrl_c_does_with_exit_code_143(capsys):
    """``kill``, ``timeout``, systemd, Slurm and Kubernetes stop a process with SIGTERM."""
    import signal

    from ald_tune.cli.main import run_command
    from ald_tune.errors import Interrupted

    def killed():
        signal.raise_signal(signal.SIGTERM)  # to this thread: handled before the next line
        raise AssertionError("not interrupted")

    def swept():
        try:
            killed()
        except KeyboardInterrupt:
            raise Interrupted("ald sweep s interrupted. Resume with `--resume --name s`.") from None

    def ctrl_c():
        raise KeyboardInterrupt

    before = signal.getsignal(signal.SIGTERM)
    assert run_command(killed, "ald-tune") == 143
    assert run_command(swept, "ald-tune") == 143
    assert run_command(ctrl_c, "ald-tune") == 130
    assert capsys.readouterr().err.strip().splitlines()[::2] == [
        "ald-tune: SIGTERM: interrupted.",
        "ald-tune: SIGTERM: ald sweep s interrupted. Resume with `--resume --name s`.",
        "ald-tune: interrupted.",
    ]
    assert signal.getsignal(signal.SIGTERM) is before


def _options(parser):
    """(command, option, help) for every option of every subcommand."""
    import argparse

    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subs.choices.items():
        for action in sub._actions:
            if action.option_strings and "-h" not in action.option_strings:
                yield name, action.option_strings[-1], action.help


def test_every_option_says_what_it_does_and_its_default_and_environment():
    from ald_tune.cli.main import build_parser

    helps = {(c, o): h for c, o, h in _options(build_parser())}
    undocumented = [k for k, h in helps.items() if not h]
    assert not undocumented, undocumented
    for command in ("ald", "grid"):
        assert "$ALD_TUNE_STORAGE" in helps[command, "--storage"]
        assert "$MLFLOW_TRACKING_URI" in helps[command, "--tracking-uri"]
        assert "$RAY_ADDRESS" in helps[command, "--address"]
    assert "$MLFLOW_TRACKING_URI" in helps["ui", "--tracking-uri"]
    assert "5000" in helps["ui", "--port"]
    # ald has no scheduler: the flag is refused with a reason, and not listed
    assert helps["ald", "--scheduler"] == argparse.SUPPRESS
    assert "default" in helps["grid", "--scheduler"]


def test_the_ui_hint_names_the_store_it_is_about(tmp_path, monkeypatch):
    from ald_tune.tracking.store import default_tracking_uri, ui_hint

    monkeypatch.chdir(tmp_path)
    assert ui_hint(default_tracking_uri("runs")) == "open it with `ald-tune ui`"
    assert ui_hint(default_tracking_uri("elsewhere"), "elsewhere") == (
        "open it with `ald-tune ui --run-dir elsewhere`"
    )
    other = f"sqlite:///{tmp_path}/other.db"
    assert ui_hint(other) == f"open it with `ald-tune ui --tracking-uri {other}`"
    assert ui_hint("http://u:secret@h:5000") == "open http://u:***@h:5000 in a browser"


def test_shell_completion_completes_commands_and_their_options(capsys, tmp_path):
    """``ald-tune --print-completion bash`` is a script bash sources: it completes the
    commands and each command's own options (run in a real bash)."""
    import shutil
    import subprocess

    from ald_tune.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(["--print-completion", "bash"])
    assert e.value.code in (0, None)
    script = tmp_path / "ald-tune.bash"
    script.write_text(capsys.readouterr().out)
    if shutil.which("bash") is None:
        pytest.skip("no bash here")

    def complete(*words: str) -> list[str]:
        line = " ".join(["ald-tune", *words])
        code = (
            f"source {script}; COMP_WORDS=(ald-tune {' '.join(words)}); "
            f"COMP_CWORD={len(words)}; COMP_LINE='{line}'; COMP_POINT={len(line)}; "
            f"_shtab_ald_tune ald-tune {words[-1]} ald-tune; echo ${{COMPREPLY[@]}}"
        )
        return subprocess.run(["bash", "-c", code], capture_output=True, text=True).stdout.split()

    assert complete("rep") == ["report"]
    assert complete("report", "--tr") == ["--tracking-uri"]
    assert "--fixed-nz" in complete("train", "--f")
