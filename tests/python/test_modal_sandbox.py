"""The logic of assets/modal_sandbox.py: argument handling, the image cache
and its keys, and the five subcommands against a stand-in for the Modal SDK.
Nothing here talks to Modal."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import load_script

ms = load_script()


def prepare_args(**kw):
    base = dict(dockerfile=None, include_cwd=False, copy_dir=[], sandbox_init_cmd=None, project_root="/app",
                exclude=[])
    base.update(kw)
    return SimpleNamespace(**base)


# ---------------------------------------------------------------- arguments


def test_copy_dir_splits_at_the_first_colon():
    assert ms.parse_copy_dir("./data:/app/data") == ("./data", "/app/data")
    assert ms.parse_copy_dir("a:/b:c") == ("a", "/b:c")
    for bad in ["nocolon", ":/x", "x:", "x:relative"]:
        with pytest.raises(ms.UsageError):
            ms.parse_copy_dir(bad)


def test_download_pairs_split_at_the_first_colon():
    assert ms.parse_pair("/app/r.xml:/tmp/l.xml") == ("/app/r.xml", "/tmp/l.xml")
    for bad in ["/app/r.xml", ":x", "x:"]:
        with pytest.raises(ms.UsageError):
            ms.parse_pair(bad)


def test_prepare_accepts_what_offload_appends():
    args = ms.build_parser().parse_args([
        "prepare", "Dockerfile", "--include-cwd", "--cached", "--project-root=/code",
        "--copy-dir=./a:/a", "--copy-dir", "./b:/b", "--sandbox-init-cmd=uv sync && echo 'x'",
    ])
    assert args.dockerfile == "Dockerfile"
    assert args.include_cwd and args.cached and not args.no_cache
    assert args.copy_dir == ["./a:/a", "./b:/b"]
    assert args.sandbox_init_cmd == "uv sync && echo 'x'"
    assert args.project_root == "/code"


def test_usage_errors_exit_2_before_touching_modal(env, capsys):
    code, out, err = env.main("download", "sb-1", "no-colon", capsys=capsys)
    assert (code, out) == (2, "")
    assert "invalid download pair 'no-colon'" in err
    code, _, err = env.main("prepare", "--copy-dir=./missing:/m", capsys=capsys)
    assert code == 2 and "./missing is not a directory" in err
    code, _, err = env.main("prepare", "Nope.Dockerfile", capsys=capsys)
    assert code == 2 and "Dockerfile not found: Nope.Dockerfile" in err
    assert env.calls() == []
    with pytest.raises(SystemExit) as e:
        ms.build_parser().parse_args(["frobnicate"])
    assert e.value.code == 2


# ---------------------------------------------------------------- cache keys


def test_keys_are_stable_and_follow_what_built_the_image(env):
    p = env.project
    a = prepare_args(dockerfile="Dockerfile", include_cwd=True)
    base, final = ms.image_keys(a, p)
    assert ms.image_keys(a, p) == (base, final)

    (p / "tests" / "test_a.py").write_text("def test_a():\n    assert 1\n")
    base2, final2 = ms.image_keys(a, p)
    assert base2 == base, "the Dockerfile does not COPY: the project is not in the base"
    assert final2 != final, "the project's files are in the final image"

    (p / "Dockerfile").write_text("FROM python:3.13-slim\n")
    base3, final3 = ms.image_keys(a, p)
    assert base3 != base2 and final3 != final2

    assert ms.image_keys(prepare_args(dockerfile="Dockerfile", include_cwd=True, sandbox_init_cmd="make"), p)[1] != final3
    assert ms.image_keys(prepare_args(dockerfile="Dockerfile", include_cwd=True, project_root="/code"), p)[1] != final3
    assert ms.image_keys(prepare_args(dockerfile="Dockerfile"), p)[1] != final3


def test_without_include_cwd_the_project_does_not_matter(env):
    a = prepare_args(dockerfile="Dockerfile")
    before = ms.image_keys(a, env.project)
    (env.project / "new.py").write_text("x = 1\n")
    assert ms.image_keys(a, env.project) == before


def test_a_dockerfile_that_copies_files_keys_the_base_on_its_context(env):
    (env.project / "Dockerfile").write_text("FROM python:3.12\nCOPY . /app\n")
    a = prepare_args(dockerfile="Dockerfile")
    base, _ = ms.image_keys(a, env.project)
    (env.project / "new.py").write_text("x = 1\n")
    assert ms.image_keys(a, env.project)[0] != base


def test_copy_dir_content_is_part_of_the_key(env):
    data = env.project / "data"
    data.mkdir()
    (data / "f.txt").write_text("1")
    a = prepare_args(copy_dir=["./data:/data"])
    before = ms.image_keys(a, env.project)[1]
    (data / "f.txt").write_text("2")
    assert ms.image_keys(a, env.project)[1] != before


def test_ignored_files_and_the_cache_file_do_not_change_the_key(env):
    p = env.project
    (p / ".dockerignore").write_text("# comment\n*.log\nbuild/\n!keep.log\n")
    a = prepare_args(include_cwd=True)
    before = ms.image_keys(a, p)
    (p / "debug.log").write_text("noise")
    (p / "build").mkdir()
    (p / "build" / "out.o").write_text("obj")
    (p / ".offload-image-cache").write_text("{}")
    # What Offload itself writes in a project changes every run.
    (p / "offload.history.tsv").write_text("t\t1.0\n")
    (p / "test-results").mkdir()
    (p / "test-results" / "junit.xml").write_text("<testsuites/>")
    (p / ".offload").mkdir()
    assert ms.image_keys(a, p) == before
    (p / "reports").mkdir()
    (p / "reports" / "junit.xml").write_text("<testsuites/>")
    assert ms.image_keys(prepare_args(include_cwd=True, exclude=["reports"]), p) == before
    (p / "keep.log").write_text("kept")
    assert ms.image_keys(a, p) != before


def test_ignore_rules():
    ig = ms.Ignore(Path("/p"), ["*.pyc", "node_modules", "docs/*.md", "!docs/keep.md", "./.venv/"])
    assert ig("a/b/c.pyc")
    assert ig("node_modules") and ig("node_modules/x/y.js") and ig("pkg/node_modules/z")
    assert ig("docs/a.md") and not ig("docs/keep.md") and not ig("docs/a.txt")
    assert ig(".venv/bin/python")
    assert ig(Path("/p/.offload-image-cache"))
    assert not ig(Path("/p/src/main.py")) and not ig("src/main.py")
    assert not ig(Path("/elsewhere/x.pyc")), "outside the directory: not ours to ignore"


# ---------------------------------------------------------------- prepare


def test_prepare_builds_then_reuses_the_cached_image(env, capsys):
    code, out, err = env.main("prepare", "Dockerfile", "--include-cwd", capsys=capsys)
    assert code == 0, err
    image = out.strip().splitlines()[-1]
    assert image.startswith("im-")
    assert len(env.calls("Image.build")) == 2, "base image, then the project image"
    cache = json.loads((env.project / ".offload-image-cache").read_text())
    assert cache["version"] == 1 and image in cache["images"].values()

    env.clear_calls()
    code, out, err = env.main("prepare", "Dockerfile", "--include-cwd", capsys=capsys)
    assert (code, out.strip()) == (0, image)
    assert "using cached image" in err
    assert env.calls("Image.build") == [] and env.calls("App.lookup") == []


def test_a_changed_project_reuses_the_cached_base(env, capsys):
    code, first, _ = env.main("prepare", "Dockerfile", "--include-cwd", capsys=capsys)
    (env.project / "tests" / "test_b.py").write_text("def test_b():\n    pass\n")
    env.clear_calls()
    code, second, err = env.main("prepare", "Dockerfile", "--include-cwd", capsys=capsys)
    assert code == 0 and second != first
    assert "using cached base image" in err
    assert len(env.calls("Image.build")) == 1
    uploaded = env.calls("Image.add_local_dir")[0]
    assert "tests/test_b.py" in uploaded["files"] and uploaded["remote"] == "/app"


@pytest.mark.parametrize("how", ["flag", "env"])
def test_no_cache_builds_afresh(env, capsys, monkeypatch, how):
    env.main("prepare", "--include-cwd", capsys=capsys)
    env.clear_calls()
    argv = ["prepare", "--include-cwd"]
    if how == "flag":
        argv.append("--no-cache")
    else:
        monkeypatch.setenv("OFFLOAD_NO_CACHE", "1")
    code, _, err = env.main(*argv, capsys=capsys)
    assert code == 0, err
    assert "cached" not in err
    assert len(env.calls("Image.build")) == 2
    assert env.calls("Image.from_id") == []


def test_a_lost_cached_base_is_rebuilt_from_scratch(env, capsys, monkeypatch):
    env.main("prepare", "Dockerfile", "--include-cwd", capsys=capsys)
    (env.project / "tests" / "test_c.py").write_text("def test_c():\n    pass\n")
    monkeypatch.setenv("FAKE_MODAL_LOST_IMAGES", "1")
    env.clear_calls()
    code, out, err = env.main("prepare", "Dockerfile", "--include-cwd", capsys=capsys)
    assert code == 0, err
    assert "rebuilding from scratch" in err
    assert len(env.calls("Image.build")) == 2
    assert out.strip().startswith("im-")


def test_old_cache_files_are_replaced(env, capsys):
    (env.project / ".offload-image-cache").write_text("im-fromtheoldformat\n")
    code, out, _ = env.main("prepare", capsys=capsys)
    assert code == 0 and out.strip() != "im-fromtheoldformat"
    assert json.loads((env.project / ".offload-image-cache").read_text())["version"] == 1


def test_upload_skips_exactly_what_the_key_ignores(env, capsys):
    (env.project / ".dockerignore").write_text("secret.txt\n")
    (env.project / "secret.txt").write_text("s")
    (env.project / ".offload-image-cache").write_text("{}")
    data = env.project / "data"
    data.mkdir()
    (data / "d.txt").write_text("d")
    code, _, err = env.main(
        "prepare", "--include-cwd", "--project-root=/code", "--copy-dir=./data:/data",
        "--sandbox-init-cmd=make setup", capsys=capsys,
    )
    assert code == 0, err
    cwd_upload, data_upload = env.calls("Image.add_local_dir")
    assert cwd_upload["remote"] == "/code" and cwd_upload["copy"] is True
    assert "secret.txt" not in cwd_upload["files"] and ".offload-image-cache" not in cwd_upload["files"]
    assert "tests/test_a.py" in cwd_upload["files"]
    assert data_upload["remote"] == "/data" and data_upload["files"] == ["d.txt"]
    final_ops = env.calls("Image.build")[-1]["ops"]
    assert ["workdir", "/code"] in final_ops and ["run_commands", ["make setup"]] in final_ops


def test_a_failed_build_exits_1_with_the_sdk_message(env, capsys, monkeypatch):
    monkeypatch.setenv("FAKE_MODAL_BUILD_FAILS", "1")
    code, out, err = env.main("prepare", capsys=capsys)
    assert (code, out) == (1, "")
    assert "out of quota" in err


# ---------------------------------------------------------------- sandboxes


def test_sandbox_lifecycle_as_subprocesses(env):
    prepared = env.run("prepare", "--include-cwd")
    assert prepared.returncode == 0, prepared.stderr
    image = prepared.stdout.strip().splitlines()[-1]

    created = env.run("create", image, "--workdir=/code")
    assert created.returncode == 0, created.stderr
    sandbox = created.stdout.strip()
    assert sandbox.startswith("sb-") and "\n" not in sandbox
    assert env.calls("Sandbox.create")[0]["workdir"] == "/code"

    ran = env.run("exec", sandbox, "echo out; echo err >&2; mkdir -p r; echo '<x/>' > r/j.xml; exit 7")
    assert ran.returncode == 7
    assert ran.stdout == "out\n" and ran.stderr == "err\n"
    assert env.calls("Sandbox.exec")[0]["argv"][:2] == ["sh", "-c"]

    local = env.project / "results" / "deep" / "j.xml"
    got = env.run("download", sandbox, f"/code/r/j.xml:{local}")
    assert got.returncode == 0, got.stderr
    assert local.read_text() == "<x/>\n"

    missing = env.run("download", sandbox, f"/code/r/none.xml:{local}")
    assert missing.returncode == 1 and "cannot read /code/r/none.xml" in missing.stderr

    assert env.run("destroy", sandbox).returncode == 0
    assert not (env.state / sandbox).exists()
    again = env.run("destroy", sandbox)
    assert again.returncode == 0 and "already gone" in again.stderr


def test_create_with_a_lost_image_says_what_to_do(env):
    created = env.run("create", "im-gone")
    assert created.returncode == 1 and created.stdout == ""
    assert "--no-cache" in created.stderr and ".offload-image-cache" in created.stderr


def test_script_declares_its_dependencies_inline():
    text = Path(ms.__file__).read_text()
    header = text.split("# ///")[1]
    assert "dependencies" in header and "modal" in header
