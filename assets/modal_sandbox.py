#!/usr/bin/env python3
# /// script
# requires-python = ">=3.10"
# dependencies = ["modal>=1.2,<2"]
# ///
"""Modal sandboxes for Offload's `default` provider.

Bundled into the offload binary and run as `uv run @modal_sandbox.py ...`.
Every subcommand prints only its result on stdout (an image ID, a sandbox ID,
or the remote command's output) and its progress and errors on stderr.

    prepare [DOCKERFILE] [--include-cwd] [--copy-dir L:R]... [--sandbox-init-cmd C]
            [--project-root DIR] [--exclude PATTERN]... [--cached] [--no-cache]
    create IMAGE_ID [--workdir DIR] [--timeout SECS]
    exec SANDBOX_ID COMMAND
    download SANDBOX_ID REMOTE:LOCAL...
    destroy SANDBOX_ID

The image ID is cached in `.offload-image-cache` (in the current directory),
keyed by everything that went into the image: the Dockerfile's content (and
its build context when it COPYs or ADDs files), the content of the current
directory with --include-cwd, each copy dir's content, the init command and the
project root. A cache hit therefore never hands out an image with stale files.
`--no-cache` (or OFFLOAD_NO_CACHE=1, which `offload run --no-cache` sets)
skips the lookup and builds afresh; the new ID is still recorded.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import sys
import tempfile
import threading
from pathlib import Path

APP_NAME = "offload-sandbox"
CACHE_FILE = ".offload-image-cache"
CACHE_VERSION = 1
# Entries kept in the cache file; the oldest go first.
CACHE_LIMIT = 32
DEFAULT_ROOT = "/app"
# Modal's own limit on a sandbox's life is 24 h; Offload's batches are shorter.
DEFAULT_SANDBOX_TIMEOUT = 3600
# Never part of an image, whatever .dockerignore says: what Offload itself
# writes in a project (this cache, its timing history, its default report
# directory, sandbox result files). They change on every run, so uploading them
# would also defeat the image cache.
ALWAYS_IGNORED = (CACHE_FILE, "*.history.tsv", "test-results", ".offload")


class UsageError(Exception):
    """A problem with the arguments: exit code 2."""


class CommandError(Exception):
    """The operation failed: exit code 1."""


def log(message: str) -> None:
    print(f"modal_sandbox: {message}", file=sys.stderr, flush=True)


def modal_sdk():
    """Import the Modal SDK late, so that argument errors need no SDK."""
    import modal  # noqa: PLC0415

    return modal


# --------------------------------------------------------------------------
# Arguments


def parse_copy_dir(spec: str) -> tuple[str, str]:
    """`local:remote`, split at the first colon."""
    local, sep, remote = spec.partition(":")
    if not sep or not local or not remote:
        raise UsageError(f"invalid --copy-dir {spec!r}: expected LOCAL:REMOTE, e.g. ./data:/app/data")
    if not remote.startswith("/"):
        raise UsageError(f"invalid --copy-dir {spec!r}: the remote path {remote!r} must be absolute")
    return local, remote


def parse_pair(spec: str) -> tuple[str, str]:
    """A download pair `remote:local`, split at the first colon."""
    remote, sep, local = spec.partition(":")
    if not sep or not remote or not local:
        raise UsageError(f"invalid download pair {spec!r}: expected REMOTE:LOCAL")
    return remote, local


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modal_sandbox.py", description="Modal sandboxes for Offload.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="build (or reuse) the image; print its ID last")
    p.add_argument("dockerfile", nargs="?", help="Dockerfile to build from (default: Debian slim + pytest)")
    p.add_argument("--include-cwd", action="store_true", help="copy the current directory to --project-root")
    p.add_argument("--copy-dir", action="append", default=[], metavar="LOCAL:REMOTE", help="copy a directory into the image")
    p.add_argument("--sandbox-init-cmd", help="shell command run in the image after the copies")
    p.add_argument("--project-root", default=DEFAULT_ROOT, help=f"where --include-cwd puts the project (default {DEFAULT_ROOT})")
    p.add_argument("--cached", action="store_true", help="use the image cache (the default; kept for old configs)")
    p.add_argument("--no-cache", action="store_true", help="build afresh instead of using the image cache")
    p.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                   help="leave matching paths of the current directory out of the image (like .dockerignore)")
    p.add_argument("--cache-file", default=CACHE_FILE, help=argparse.SUPPRESS)

    p = sub.add_parser("create", help="start a sandbox; print its ID")
    p.add_argument("image_id")
    p.add_argument("--workdir", default=DEFAULT_ROOT)
    p.add_argument("--timeout", type=int, default=DEFAULT_SANDBOX_TIMEOUT, help="sandbox lifetime in seconds")

    p = sub.add_parser("exec", help="run a shell command in a sandbox; exit with its code")
    p.add_argument("sandbox_id")
    p.add_argument("shell_command", metavar="COMMAND")

    p = sub.add_parser("download", help="copy files out of a sandbox")
    p.add_argument("sandbox_id")
    p.add_argument("pairs", nargs="+", metavar="REMOTE:LOCAL")

    p = sub.add_parser("destroy", help="terminate a sandbox")
    p.add_argument("sandbox_id")
    return parser


# --------------------------------------------------------------------------
# What went into an image, and the cache keyed by it


def dockerignore_patterns(directory: Path) -> list[str]:
    path = directory / ".dockerignore"
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text(errors="replace").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


class Ignore:
    """`.dockerignore` semantics, simplified: glob patterns against the path
    relative to the directory (a pattern also covers everything below a
    matching directory), `!pattern` re-includes, the last match wins."""

    def __init__(self, base: Path, patterns: list[str], excludes: list[str] = ()):
        self.base = base
        self.rules = []
        for pattern in [*patterns, *excludes]:
            negate = pattern.startswith("!")
            pattern = pattern[1:] if negate else pattern
            pattern = pattern.strip("/").removeprefix("./")
            if pattern:
                self.rules.append((negate, pattern))

    def __call__(self, path) -> bool:
        path = Path(path)
        if path.is_absolute():
            try:
                path = path.relative_to(self.base)
            except ValueError:
                return False
        rel = path.as_posix()
        if rel in ("", "."):
            return False
        parts = rel.split("/")
        if any(fnmatch.fnmatchcase(parts[0], pattern) for pattern in ALWAYS_IGNORED):
            return True
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        ignored = False
        for negate, pattern in self.rules:
            if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes) or (
                "/" not in pattern and any(fnmatch.fnmatchcase(part, pattern) for part in parts)
            ):
                ignored = not negate
        return ignored


def tree_hash(directory: Path, ignore: Ignore | None = None) -> str:
    """A hash of every file's path, executable bit and content under
    `directory` that `ignore` does not exclude (symlinks by their target)."""
    digest = hashlib.sha256()
    directory = Path(directory)
    for root, dirs, files in os.walk(directory):
        root_path = Path(root)
        rel_root = root_path.relative_to(directory)
        dirs[:] = sorted(d for d in dirs if not (ignore and ignore(rel_root / d)))
        for name in sorted(files):
            rel = rel_root / name
            if ignore and ignore(rel):
                continue
            full = root_path / name
            digest.update(rel.as_posix().encode() + b"\0")
            if full.is_symlink():
                digest.update(b"link\0" + os.readlink(full).encode() + b"\0")
                continue
            digest.update(b"x\0" if os.access(full, os.X_OK) else b"-\0")
            with open(full, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            digest.update(b"\0")
    return digest.hexdigest()


def dockerfile_copies_files(text: str) -> bool:
    for line in text.splitlines():
        words = line.strip().split(None, 1)
        if words and words[0].upper() in ("COPY", "ADD"):
            return True
    return False


def image_keys(args, cwd: Path) -> tuple[str, str]:
    """(base key, final key): the base image is the Dockerfile's; the final
    image adds the project, the copy dirs and the init command."""
    ignore = Ignore(cwd, dockerignore_patterns(cwd), args.exclude)
    base = {"v": CACHE_VERSION, "dockerfile": None}
    if args.dockerfile:
        text = Path(args.dockerfile).read_text(errors="replace")
        base["dockerfile"] = text
        if dockerfile_copies_files(text):
            base["context"] = tree_hash(cwd, ignore)
    base_key = hashlib.sha256(json.dumps(base, sort_keys=True).encode()).hexdigest()
    final = {
        "base": base_key,
        "cwd": tree_hash(cwd, ignore) if args.include_cwd else None,
        "root": args.project_root,
        "copy_dirs": [
            [local, remote, tree_hash(Path(local), Ignore(Path(local), dockerignore_patterns(Path(local))))]
            for local, remote in (parse_copy_dir(s) for s in args.copy_dir)
        ],
        "init": args.sandbox_init_cmd,
    }
    final_key = hashlib.sha256(json.dumps(final, sort_keys=True).encode()).hexdigest()
    return base_key, final_key


class ImageCache:
    """`.offload-image-cache`: JSON `{"version": 1, "images": {key: id}}`.
    A file in another format (the first implementation wrote a bare image
    ID) is treated as empty and replaced."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.images: dict[str, str] = {}
        try:
            data = json.loads(self.path.read_text())
            if isinstance(data, dict) and data.get("version") == CACHE_VERSION:
                self.images = {k: v for k, v in data.get("images", {}).items() if isinstance(v, str)}
        except (OSError, ValueError):
            pass

    def get(self, key: str) -> str | None:
        return self.images.get(key)

    def put(self, key: str, image_id: str) -> None:
        self.images.pop(key, None)
        self.images[key] = image_id
        while len(self.images) > CACHE_LIMIT:
            self.images.pop(next(iter(self.images)))
        self._save()

    def forget(self, key: str) -> None:
        if self.images.pop(key, None) is not None:
            self._save()

    def _save(self) -> None:
        data = json.dumps({"version": CACHE_VERSION, "images": self.images}, indent=1)
        directory = self.path.parent if str(self.path.parent) else Path(".")
        fd, tmp = tempfile.mkstemp(prefix=".offload-image-cache.", dir=directory)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(data + "\n")
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# --------------------------------------------------------------------------
# Subcommands


def materialize(modal, image, app) -> str:
    """Build the image now and return its final ID."""
    build = getattr(image, "build", None)
    if build is not None:
        built = build(app)
        image = built if built is not None else image
    else:
        # Older SDKs build lazily: a throwaway sandbox forces the build.
        sandbox = modal.Sandbox.create("true", image=image, app=app, timeout=120)
        sandbox.wait()
        sandbox.terminate()
    return image.object_id


def cmd_prepare(args) -> int:
    modal = modal_sdk()
    cwd = Path.cwd()
    for spec in args.copy_dir:
        local, _ = parse_copy_dir(spec)
        if not Path(local).is_dir():
            raise UsageError(f"--copy-dir {spec!r}: {local} is not a directory")
    if args.dockerfile and not Path(args.dockerfile).is_file():
        raise UsageError(f"Dockerfile not found: {args.dockerfile}")
    no_cache = args.no_cache or os.environ.get("OFFLOAD_NO_CACHE", "") not in ("", "0")
    cache = ImageCache(cwd / args.cache_file)
    base_key, final_key = image_keys(args, cwd)

    if not no_cache and (image_id := cache.get(final_key)):
        log(f"using cached image {image_id} ({args.cache_file}; run with --no-cache to rebuild)")
        print(image_id)
        return 0

    app = modal.App.lookup(APP_NAME, create_if_missing=True)
    ignore = Ignore(cwd, dockerignore_patterns(cwd), args.exclude)

    def build(use_cached_base: bool) -> str:
        base_id = cache.get(base_key) if use_cached_base else None
        if base_id:
            log(f"using cached base image {base_id}")
            base = modal.Image.from_id(base_id)
        else:
            if args.dockerfile:
                log(f"building the base image from {args.dockerfile}")
                base = modal.Image.from_dockerfile(args.dockerfile, context_dir=str(cwd))
            else:
                log("building the base image (Debian slim, Python, pytest)")
                base = modal.Image.debian_slim().pip_install("pytest")
            base_id = materialize(modal, base, app)
            cache.put(base_key, base_id)
        image = base
        if args.include_cwd:
            image = image.add_local_dir(str(cwd), args.project_root, copy=True, ignore=ignore)
        for spec in args.copy_dir:
            local, remote = parse_copy_dir(spec)
            local_path = Path(local).resolve()
            image = image.add_local_dir(
                str(local_path), remote, copy=True, ignore=Ignore(local_path, dockerignore_patterns(local_path))
            )
        if args.sandbox_init_cmd:
            image = image.workdir(args.project_root).run_commands(args.sandbox_init_cmd)
        if image is base:
            return base_id
        log("building the project image")
        return materialize(modal, image, app)

    use_cached_base = not no_cache
    try:
        image_id = build(use_cached_base)
    except Exception as e:  # noqa: BLE001 - any SDK error: the cached base may be gone
        if not (use_cached_base and cache.get(base_key)):
            raise
        log(f"building on the cached base image failed ({e}); rebuilding from scratch")
        cache.forget(base_key)
        image_id = build(False)
    cache.put(final_key, image_id)
    print(image_id)
    return 0


def cmd_create(args) -> int:
    modal = modal_sdk()
    app = modal.App.lookup(APP_NAME, create_if_missing=True)
    try:
        image = modal.Image.from_id(args.image_id)
        sandbox = modal.Sandbox.create(app=app, image=image, workdir=args.workdir, timeout=args.timeout)
    except modal.exception.NotFoundError as e:
        raise CommandError(
            f"image {args.image_id} not found ({e}); it may have been garbage-collected: "
            f"delete {CACHE_FILE} or run offload with --no-cache"
        ) from e
    print(sandbox.object_id)
    return 0


def pump(stream, out) -> None:
    for chunk in stream:
        if isinstance(chunk, bytes):
            out.buffer.write(chunk)
        else:
            out.write(chunk)
        out.flush()


def cmd_exec(args) -> int:
    modal = modal_sdk()
    sandbox = modal.Sandbox.from_id(args.sandbox_id)
    # POSIX sh: every image has it (not every image has bash), and Offload's
    # {command} is plain sh.
    process = sandbox.exec("sh", "-c", args.shell_command)
    # Both streams live, on two threads, so neither blocks the other.
    threads = [
        threading.Thread(target=pump, args=(process.stdout, sys.stdout), daemon=True),
        threading.Thread(target=pump, args=(process.stderr, sys.stderr), daemon=True),
    ]
    for t in threads:
        t.start()
    code = process.wait()
    for t in threads:
        t.join()
    if code is None:
        code = process.returncode
    return int(code) if code is not None else 1


def cmd_download(args) -> int:
    pairs = [parse_pair(p) for p in args.pairs]
    modal = modal_sdk()
    sandbox = modal.Sandbox.from_id(args.sandbox_id)
    for remote, local in pairs:
        try:
            f = sandbox.open(remote, "rb")
            try:
                data = f.read()
            finally:
                f.close()
        except Exception as e:  # noqa: BLE001 - the SDK's file errors vary by version
            raise CommandError(f"cannot read {remote} in sandbox {args.sandbox_id}: {e}") from e
        target = Path(local)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    return 0


def cmd_destroy(args) -> int:
    modal = modal_sdk()
    try:
        modal.Sandbox.from_id(args.sandbox_id).terminate()
    except modal.exception.NotFoundError:
        log(f"sandbox {args.sandbox_id} was already gone")
    return 0


COMMANDS = {
    "prepare": cmd_prepare,
    "create": cmd_create,
    "exec": cmd_exec,
    "download": cmd_download,
    "destroy": cmd_destroy,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UsageError as e:
        log(f"{args.command}: {e}")
        return 2
    except CommandError as e:
        log(f"{args.command}: {e}")
        return 1
    except Exception as e:  # noqa: BLE001 - report SDK errors in one line, not a traceback
        log(f"{args.command} failed: {type(e).__name__}: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
