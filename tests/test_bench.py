"""The benchmarks run and print their documented keys (tiny sizes, numbers never
checked), and the archive cache they measure keeps the archive byte-identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from bench import __main__ as bench_main
from bench import bench_synth, measure
from bench.measure import TINY, alternate, percentile, ratios, run_process, summary
from mns_callback_flow import packaging
from mns_callback_flow.packaging import FUNCTION_DIR, PackagingError, build_archive
from tests.test_packaging import fake_distribution

ROOT = Path(__file__).resolve().parents[1]
SUMMARY_KEYS = {"median", "min", "max", "runs"}

# What each figure prints (README "Benchmarks", bench/RESULTS.md), as a path of keys
# to a {"median", "min", "max", "runs"} summary; every figure also has target and meets_target.
DOCUMENTED = {
    "synth_vs_imports": [("synth_seconds",), ("imports_only_seconds",), ("wall_ratio",),
                         ("synth_peak_rss_mib",), ("imports_only_peak_rss_mib",)],
    "render_growth": [("growth_ratio",), ("per_extra_pattern_ms",), ("seconds_by_patterns", "1"),
                      ("handwritten", "growth_ratio"), ("handwritten", "per_extra_pattern_ms"),
                      ("handwritten", "seconds_by_patterns", "1"), ("per_extra_pattern_vs_handwritten",)],
    "cold_start": [(runtime, key) for runtime in ("python3.9", "python3.10", "python3.12")
                   for key in ("ours_import_index_ms", "ours_first_push_ms", "ours_total_ms",
                               "sample_imports_ms", "sample_first_report_ms", "sample_total_ms", "ratio")],
    "local_e2e_c1": [("p50_ms",), ("p95_ms",), ("p99_ms",)],
    "local_e2e_concurrent": [("concurrency_2", "executions_per_second"), ("concurrency_2", "p50_ms"),
                             ("concurrency_2", "p99_ms")],
    "archive_build": [(runtime, key) for runtime in ("python3.9", "python3.10", "python3.12")
                      for key in ("first_build_seconds", "same_source_again_seconds")],
}


def _at(document: dict, path: tuple[str, ...]) -> object:
    for key in path:
        document = document[key]
    return document


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every figure once, at the tiny size, through the same entry ``make bench`` uses."""
    missing_peer = tmp_path_factory.mktemp("no-peer")
    out = subprocess.run([sys.executable, "-m", "bench", "--tiny", "--cdk-peer", str(missing_peer)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def test_the_run_names_its_date_and_machine(tiny_run: dict) -> None:
    assert tiny_run["size"] == "tiny"
    assert set(tiny_run["figures"]) == set(bench_main.FIGURES)
    assert {"cores", "python", "load_average_1_5_15"} <= set(tiny_run["machine"])
    assert tiny_run["date"].endswith("Z")
    # Where /proc/stat exists, the run says how much of the CPU the host took meanwhile; so
    # does each figure, unless it ended within one clock tick (then it cannot be told: None).
    if Path("/proc/stat").exists():
        assert 0.0 <= tiny_run["machine_after"]["cpu_steal_share"] <= 1.0
        shares = [figure["cpu_steal_share"] for figure in tiny_run["figures"].values()]
        assert all(share is None or 0.0 <= share <= 1.0 for share in shares)
        assert any(share is not None for share in shares)


def test_the_steal_share_is_the_steal_ticks_over_all_ticks() -> None:
    assert measure.steal_share((100, 1000), (150, 2000)) == 0.05
    assert measure.steal_share(None, (150, 2000)) is None
    assert measure.steal_share((100, 1000), (100, 1000)) is None


@pytest.mark.parametrize("figure", sorted(DOCUMENTED))
def test_each_figure_prints_its_documented_summaries(tiny_run: dict, figure: str) -> None:
    result = tiny_run["figures"][figure]
    for path in DOCUMENTED[figure]:
        measured = _at(result, path)
        assert set(measured) == SUMMARY_KEYS, (figure, path)
        assert measured["runs"] >= 1
    if figure != "archive_build":
        assert isinstance(result["target"], str) and isinstance(result["meets_target"], bool)


def test_compared_figures_give_one_ratio_per_round(tiny_run: dict) -> None:
    figures = tiny_run["figures"]
    assert len(figures["synth_vs_imports"]["wall_ratio_per_round"]) == TINY.rounds
    assert len(figures["render_growth"]["growth_ratio_per_round"]) == TINY.rounds
    assert len(figures["cold_start"]["python3.10"]["ratio_per_round"]) == TINY.cold_rounds


def test_handler_work_and_archive_size_keys(tiny_run: dict) -> None:
    work = tiny_run["figures"]["handler_work"]
    assert {"p50_ms", "p95_ms", "p99_ms", "pushes", "key_bits", "with_1024_bit_key", "with_2048_bit_key"} <= set(work)
    archive = tiny_run["figures"]["archive_vs_pip"]
    assert archive["naive_pip_skipped"] and archive["naive_pip_zip_bytes"] is None
    assert archive["python3.10"]["archive_bytes"] > 0


def test_a_missing_peer_skips_the_cdk_row_with_a_note(tiny_run: dict) -> None:
    row = tiny_run["figures"]["synth_vs_cdk"]
    assert "no CDK peer app" in row["skipped"] and "wall_ratio" not in row


def test_without_npm_the_cdk_row_is_skipped_naming_npm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    peer = tmp_path / "peer"
    peer.mkdir()
    (peer / "package-lock.json").write_text("{}")
    monkeypatch.setattr(bench_synth.shutil, "which", lambda name: None)
    row = bench_synth.synth_vs_cdk(TINY, peer)
    assert row["skipped"] == "npm is not installed on this machine: the cdk row is skipped"


def test_unknown_figure_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown figure"):
        bench_main.run(["render_speed"], TINY)


def test_growth_program_declares_one_pattern_per_count() -> None:
    one, three = bench_synth.render_patterns(1), bench_synth.render_patterns(3)
    assert one > 0 and three == 3 * one


def _resources(rendered: list[dict]) -> list[tuple[str, str]]:
    """(type, inputs as JSON) of each rendered resource that is not one of the package's components."""
    return sorted((r["type"], json.dumps(r["inputs"], sort_keys=True)) for r in rendered
                  if not r["type"].startswith("mns-callback-flow:"))


def test_handwritten_peer_declares_exactly_the_resources_and_inputs_the_package_renders() -> None:
    from infra.synth import render

    expected = _resources(render("dev")["resources"])
    handwritten = bench_synth.handwritten_registrations(1, numbered=False).registrations
    assert len(expected) == 12
    assert _resources([r.as_render() for r in handwritten]) == expected


def test_handwritten_growth_program_names_each_pattern_apart() -> None:
    three = bench_synth.handwritten_registrations(3).registrations
    assert len(three) == 36 and len({r.name for r in three}) == 36
    topics = sorted(r.inputs["topicName"] for r in three if r.type.endswith(":ServiceTopic"))
    assert topics == [f"mns-callback-dev-{index}-topic" for index in range(3)]


# ---- the measuring tools -------------------------------------------------------


def test_run_process_reports_the_peak_memory_of_what_it_waited_for(tmp_path: Path) -> None:
    grow = "x = bytearray(64 * 1024 * 1024); x[::4096] = b'1' * len(x[::4096])"
    small = run_process([sys.executable, "-c", "pass"], cwd=tmp_path)
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grow!r}])"
    child = run_process([sys.executable, "-c", parent], cwd=tmp_path)
    assert child.peak_rss_kib - small.peak_rss_kib > 48 * 1024
    assert small.seconds > 0 and small.returncode == 0


def test_run_process_names_a_failed_command(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="exited 3: boom"):
        run_process([sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"], cwd=tmp_path)


def test_alternate_runs_the_sides_in_turn_after_a_warmup() -> None:
    order: list[str] = []
    runs = alternate({"a": lambda: order.append("a") or 1, "b": lambda: order.append("b") or 2}, rounds=2)
    assert order == ["a", "b", "a", "b", "a", "b"]
    assert runs == {"a": [1, 1], "b": [2, 2]}


def test_summaries_ratios_and_percentiles() -> None:
    assert summary([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "runs": 3}
    assert ratios([2.0, 9.0], [1.0, 3.0]) == [2.0, 3.0]
    with pytest.raises(ValueError):
        ratios([1.0], [1.0, 2.0])
    values = [float(n) for n in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 1.0)) == (50.0, 99.0, 100.0)
    assert percentile([7.0], 0.99) == 7.0


# ---- the archive cache: same bytes, rebuilt whenever an input changes ----------


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, Path]:
    """A function tree requiring one vendored distribution from its own search path."""
    root, site = tmp_path / "function", tmp_path / "site"
    (root / "callback").mkdir(parents=True)
    (root / "index.py").write_text("def handler(event, context):\n    return 'ok'\n")
    (root / "callback" / "__init__.py").write_text("")
    (root / "requirements.txt").write_text("helper\n")
    fake_distribution(site, "helper", {"helper/__init__.py": b"VALUE = 1\n"})
    return root, site


def _entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(BytesIO(data)) as opened:
        return {name: opened.read(name) for name in opened.namelist()}


def test_the_same_source_is_built_once_and_stays_byte_identical(source: tuple[Path, Path]) -> None:
    root, site = source
    first = build_archive(root, "python3.10", search_path=[str(site)])
    again = build_archive(root, "python3.10", search_path=[str(site)])
    assert again is first  # reused, not rebuilt
    packaging._BUILT.clear()
    fresh = build_archive(root, "python3.10", search_path=[str(site)])
    assert fresh is not first and fresh == first


def test_the_real_archive_is_reused_per_runtime() -> None:
    for runtime in ("python3.9", "python3.10", "python3.12"):
        assert build_archive(FUNCTION_DIR, runtime) is build_archive(FUNCTION_DIR, runtime)


def test_a_changed_source_file_is_built_again(source: tuple[Path, Path]) -> None:
    root, site = source
    before = build_archive(root, "python3.10", search_path=[str(site)])
    stat = os.stat(root / "index.py")
    (root / "index.py").write_text("def handler(event, context):\n    return 'no'\n")  # same length
    os.utime(root / "index.py", ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same mtime
    after = build_archive(root, "python3.10", search_path=[str(site)])
    assert _entries(after.data)["index.py"].endswith(b"'no'\n") and after.crc64 != before.crc64


def test_an_added_or_removed_source_file_is_built_again(source: tuple[Path, Path]) -> None:
    root, site = source
    build_archive(root, "python3.10", search_path=[str(site)])
    (root / "callback" / "extra.py").write_text("X = 1\n")
    assert "callback/extra.py" in build_archive(root, "python3.10", search_path=[str(site)]).entries
    (root / "callback" / "extra.py").unlink()
    assert "callback/extra.py" not in build_archive(root, "python3.10", search_path=[str(site)]).entries


def test_a_changed_requirements_file_is_built_again(source: tuple[Path, Path]) -> None:
    root, site = source
    assert build_archive(root, "python3.10", search_path=[str(site)]).vendored == ("helper==1.0",)
    (root / "requirements.txt").write_text("")
    assert build_archive(root, "python3.10", search_path=[str(site)]).vendored == ()


def test_a_vendored_file_changed_in_place_is_checked_again(source: tuple[Path, Path]) -> None:
    """Same size, same directory: only its bytes tell, and the full build refuses them."""
    root, site = source
    build_archive(root, "python3.10", search_path=[str(site)])
    (site / "helper" / "__init__.py").write_bytes(b"VALUE = 2\n")
    with pytest.raises(PackagingError, match=r"helper/__init__\.py differs from its RECORD hash"):
        build_archive(root, "python3.10", search_path=[str(site)])


def test_a_distribution_installed_earlier_on_the_search_path_is_seen(source: tuple[Path, Path],
                                                                     tmp_path: Path) -> None:
    """Nothing the archive was built from changed; a new install shadows it."""
    root, site = source
    first = tmp_path / "first"
    first.mkdir()
    os.utime(first, ns=(0, 0))
    before = build_archive(root, "python3.10", search_path=[str(first), str(site)])
    fake_distribution(first, "helper", {"helper/__init__.py": b"VALUE = 5\n"})
    after = build_archive(root, "python3.10", search_path=[str(first), str(site)])
    assert _entries(before.data)["helper/__init__.py"] == b"VALUE = 1\n"
    assert _entries(after.data)["helper/__init__.py"] == b"VALUE = 5\n"


def test_the_runtime_and_search_path_are_part_of_the_key(source: tuple[Path, Path], tmp_path: Path) -> None:
    root, site = source
    other = tmp_path / "other-site"
    fake_distribution(other, "helper", {"helper/__init__.py": b"VALUE = 3\n"})
    ours = build_archive(root, "python3.10", search_path=[str(site)])
    theirs = build_archive(root, "python3.10", search_path=[str(other)])
    assert _entries(theirs.data)["helper/__init__.py"] == b"VALUE = 3\n" and theirs.crc64 != ours.crc64
    assert build_archive(root, "python3.12", search_path=[str(site)]) is not ours


# ---- archives kept for later processes ------------------------------------------


def _in_fresh_process_state(monkeypatch: pytest.MonkeyPatch, store: Path) -> None:
    """This process's own archive cache emptied, as a new process starts; archives kept in ``store``."""
    monkeypatch.setattr(packaging, "_BUILT", {})
    monkeypatch.setattr(packaging, "_STORE_DIR", store)


def test_a_kept_archive_is_reused_byte_identically_by_a_later_process(
        source: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, site = source
    store = tmp_path / "store"
    _in_fresh_process_state(monkeypatch, store)
    built = build_archive(root, "python3.10", search_path=[str(site)])
    assert len(list(store.glob("*.archive"))) == 1
    _in_fresh_process_state(monkeypatch, store)
    monkeypatch.setattr(packaging, "zip_bytes", lambda files: pytest.fail("a kept archive was built again"))
    reused = build_archive(root, "python3.10", search_path=[str(site)])
    assert reused == built


@pytest.mark.parametrize("change", ["source", "requirements", "vendored", "record", "runtime", "damaged", "install"])
def test_a_kept_archive_is_not_used_once_anything_it_came_from_changed(
        change: str, source: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, site = source
    store = tmp_path / "store"
    _in_fresh_process_state(monkeypatch, store)
    runtime = "python3.10"
    before = build_archive(root, runtime, search_path=[str(site)])
    if change == "source":
        (root / "callback" / "__init__.py").write_text("CHANGED = True\n")
    elif change == "requirements":
        (root / "requirements.txt").write_text("helper==1.0  # pinned\n")
    elif change == "vendored":
        (site / "helper" / "__init__.py").write_bytes(b"X = 2\n")  # RECORD no longer matches: refused
    elif change == "record":
        record = next(site.glob("helper-*.dist-info")) / "RECORD"
        first, second, *rest = record.read_text().splitlines(keepends=True)
        record.write_text("".join([second, first, *rest]))  # the same files, other bytes
    elif change == "runtime":
        runtime = "python3.12"
    elif change == "damaged":
        kept = next(store.glob("*.archive"))
        kept.write_bytes(kept.read_bytes()[:-10])
    elif change == "install":
        (site / "other-1.0.dist-info").mkdir()
    _in_fresh_process_state(monkeypatch, store)
    fresh_builds: list[int] = []
    real_zip = packaging.zip_bytes
    monkeypatch.setattr(packaging, "zip_bytes", lambda files: fresh_builds.append(1) or real_zip(files))
    if change == "vendored":
        with pytest.raises(PackagingError, match="differs from its RECORD hash"):
            build_archive(root, runtime, search_path=[str(site)])
        return
    after = build_archive(root, runtime, search_path=[str(site)])
    assert fresh_builds == [1]
    if change != "source":
        assert after.data == before.data
    else:
        assert after.data != before.data


def test_an_unwritable_store_only_means_nothing_is_kept(
        source: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, site = source
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    _in_fresh_process_state(monkeypatch, blocker / "store")
    assert build_archive(root, "python3.10", search_path=[str(site)]).data == build_archive(
        root, "python3.10", search_path=[str(site)]).data


def test_only_the_render_command_keeps_archives_and_only_in_build(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from infra import synth

    assert synth.ARCHIVE_STORE == synth.PROJECT_ROOT / "build" / "archives"
    assert packaging._STORE_DIR is None  # a library user's program keeps none
    seen: list[Path | None] = []
    monkeypatch.setattr(synth, "render", lambda *args: seen.append(packaging._STORE_DIR) or {"resources": []})
    assert synth.main([]) == 0
    assert seen == [synth.ARCHIVE_STORE] and packaging._STORE_DIR is None
    capsys.readouterr()


def test_the_render_figures_time_renders_that_read_the_projects_bytecode() -> None:
    """With PYTHONDONTWRITEBYTECODE set no render writes it; the bench writes it before timing."""
    import importlib.util

    bench_synth._write_bytecode()
    for module in ("infra/synth.py", "mns_callback_flow/packaging.py", "bench/bench_synth.py"):
        cached = Path(importlib.util.cache_from_source(str(ROOT / module)))
        assert cached.is_file() and cached.stat().st_mtime >= (ROOT / module).stat().st_mtime - 1, module
