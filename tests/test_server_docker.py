"""The Dockerfile is a plain mirror of `make demo` (no Docker engine runs here): every file it copies
exists and is not excluded by .dockerignore, it runs the Makefile's commands, installs the server's
dependencies only (no torch), runs as a non-root user, and checks /healthz."""

import ast
import fnmatch
import re
import shlex
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def instructions():
    """[(INSTRUCTION, arguments)] with line continuations joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def makefile_recipe(target: str) -> list:
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^{re.escape(target)}\s*:", line))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def dockerignore_patterns():
    return [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip() and not p.startswith("#")]


def test_every_copied_file_exists_and_is_in_the_build_context():
    ignored = dockerignore_patterns()
    copies = [args for word, args in instructions() if word == "COPY"]
    assert copies
    checked = 0
    for args in copies:
        parts = shlex.split(args)
        if any(p.startswith("--from=") for p in parts):
            continue
        *sources, _dest = [p for p in parts if not p.startswith("--")]
        for source in sources:
            path = ROOT / source
            assert path.exists(), f"the Dockerfile copies {source}, which does not exist"
            rel = source.rstrip("/")
            for pattern in ignored:
                assert not fnmatch.fnmatch(rel, pattern) and not rel.startswith(pattern.rstrip("/") + "/"), (
                    f"{source} is excluded by .dockerignore ({pattern})"
                )
            checked += 1
    assert checked >= 6


def test_it_serves_the_committed_bundle_with_the_makefile_command():
    from server.config import Settings

    steps = instructions()
    cmd = [json_arg for word, args in steps if word == "CMD" for json_arg in __import__("json").loads(args)]
    demo = makefile_recipe("demo")
    assert len(demo) == 1, demo
    make_cmd = shlex.split(demo[0])
    assert make_cmd[0] == "$(PY)" and cmd[0] == "python"

    def without_host_port(args):
        out, skip = [], False
        for a in args:
            if skip:
                skip = False
            elif a in ("--host", "--port"):
                skip = True
            else:
                out.append(a)
        return out

    assert without_host_port(make_cmd[1:]) == without_host_port(cmd[1:]) == ["-m", "server", "serve"]
    env = " ".join(args for word, args in steps if word == "ENV")
    assert "REPTILE_DEMO_HOST=0.0.0.0" in env and "REPTILE_DEMO_PORT=8000" in env
    default_bundle = Settings().model.relative_to(ROOT).as_posix()
    assert f"REPTILE_DEMO_MODEL=/app/{default_bundle}" in env
    copied = [shlex.split(args) for word, args in steps if word == "COPY"]
    assert any(default_bundle in " ".join(c) for c in copied), "the default bundle is not in the image"
    assert "8000" in " ".join(args for word, args in steps if word == "EXPOSE")


def test_npm_step_matches_the_makefile():
    runs = [args for word, args in instructions() if word == "RUN" and "npm" in args]
    assert len(runs) == 1
    docker_npm = shlex.split(runs[0])
    assert docker_npm[:2] == ["npm", "ci"]
    make_npm = [
        shlex.split(line)
        for target in re.findall(r"^([\w./$()-]+)\s*:", (ROOT / "Makefile").read_text(), re.M)
        for line in makefile_recipe(target)
        if re.search(r"\bnpm\s+(ci|install|i)\b", line)
    ]
    for command in make_npm:  # the web setup target (web issue): the image must install the same way
        words = command[command.index("npm") :] if "npm" in command else command
        assert words[1] == "ci", f"the Makefile runs {' '.join(words)}; the image runs npm ci (from the lock file)"
        for flag in words[2:]:
            if flag.startswith("--") and not flag.startswith("--prefix"):
                assert flag in docker_npm, f"the Makefile runs npm ci with {flag}, the Dockerfile does not"
    lock = ROOT / "web" / "package-lock.json"
    assert lock.is_file(), "npm ci needs web/package-lock.json"


def test_server_image_installs_server_dependencies_only():
    steps = instructions()
    pip = [args for word, args in steps if word == "RUN" and "pip install" in args]
    assert len(pip) == 1
    assert "torch" not in pip[0] and "[train" not in pip[0] and "[dev" not in pip[0]
    assert re.search(r"pip install '\.(\[brotli\])?'", pip[0])
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = {re.split(r"[<>=!~\[ ;]", d)[0].lower() for d in project["dependencies"]}
    assert "torch" not in deps
    # every third-party module the server's code imports is installed by the image
    module_to_dist = {
        "PIL": "pillow",
        "fastapi": "fastapi",
        "uvicorn": "uvicorn",
        "jinja2": "jinja2",
        "numpy": "numpy",
        "onnxruntime": "onnxruntime",
        "safetensors": "safetensors",
        "pydantic": "fastapi",
        "starlette": "fastapi",
        "brotli": "brotli",
    }
    local = {"server", "bundle", "preprocessing"}
    stdlib = set(sys.stdlib_module_names)
    for package in local:
        for source in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(source.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top in stdlib or top in local:
                        continue
                    assert top in module_to_dist, f"{source.relative_to(ROOT)} imports {top}, not in the image"
                    assert module_to_dist[top] in deps | {"brotli"}, f"{top} is not a dependency in pyproject"
    # and the Dockerfile copies exactly those local packages (never training/)
    copied = " ".join(args for word, args in steps if word == "COPY")
    for package in local:
        assert f"{package}/" in copied
    assert "training" not in copied


def test_non_root_healthcheck_and_stages():
    steps = instructions()
    froms = [args for word, args in steps if word == "FROM"]
    assert len(froms) == 2 and " AS " in froms[0].upper()
    assert froms[1].startswith("python:3.1") and "slim" in froms[1]
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    health = [args for word, args in steps if word == "HEALTHCHECK"]
    assert len(health) == 1 and "/healthz" in health[0] and ":8000/" in health[0]
    ignored = dockerignore_patterns()
    for must in (".venv", "runs", "web/node_modules", ".git"):
        assert must in ignored
