"""`spot-agent package`: .spx layout, consistency checks and clear errors on bad input."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
import typer
import yaml
from deploy_support import DEPLOY, docker_save_bytes, write_docker_save
from typer.testing import CliRunner

from agent.extension import PackageError
from agent.image_archive import read_image_archive
from agent.package import build_spx, check_spx, package_command

MANIFEST = json.loads((DEPLOY / "manifest.json").read_text())
IMAGE = f"{MANIFEST['extension_name']}:{MANIFEST['version']}"
IMAGE_MEMBER = MANIFEST["images"][0]


def _members(spx: Path) -> dict[str, bytes]:
    with tarfile.open(spx, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def _write_spx(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def image_tar(tmp_path: Path) -> Path:
    return write_docker_save(tmp_path / "agent-image.tar", [IMAGE, "spot-cue-agent:latest"])


# ----------------------------------------------------------------------------- image archives
def test_reads_tags_and_platform_of_a_docker_save_archive(tmp_path):
    plain = read_image_archive(write_docker_save(tmp_path / "a.tar", [IMAGE], arch="arm64"))
    zipped = read_image_archive(
        write_docker_save(tmp_path / "a.tar.gz", [IMAGE], gz=True, arch="amd64")
    )
    assert plain.tags == (IMAGE,) and plain.platforms == ("linux/arm64",)
    assert zipped.tags == (IMAGE,) and zipped.architectures == ("amd64",)


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b"definitely not a tarball" * 40, "not a tar archive"),
        (
            docker_save_bytes([IMAGE], docker_manifest=False),
            "OCI layout without docker's manifest.json",
        ),
        (docker_save_bytes([]), "has no tag"),
    ],
)
def test_bad_image_archives_are_refused_with_the_reason(tmp_path, content, complaint):
    path = tmp_path / "image.tar"
    path.write_bytes(content)
    with pytest.raises(PackageError, match=complaint):
        read_image_archive(path)


def test_tar_that_is_not_an_image_is_refused(tmp_path):
    path = tmp_path / "source.tar"
    with tarfile.open(path, "w") as tar:
        tar.add(DEPLOY / "manifest.json", arcname="deploy/manifest.json")
    with pytest.raises(PackageError, match="no manifest.json inside: not a `docker save` archive"):
        read_image_archive(path)


# ------------------------------------------------------------------------------------ building
def test_builds_an_spx_with_the_spot_extension_layout(tmp_path, image_tar):
    out = tmp_path / "dist" / "spot-cue-agent.spx"
    summary = build_spx(image_tar, out)

    files = _members(out)
    assert set(files) == {"manifest.json", "docker-compose.yml", "icon.png", IMAGE_MEMBER}
    manifest = json.loads(files["manifest.json"])
    assert manifest["images"] == [IMAGE_MEMBER]
    assert manifest["version"] == MANIFEST["version"] and manifest["installation_target"] == "spot"
    assert "date" in manifest  # added, as Boston Dynamics' build script does
    assert files["docker-compose.yml"] == (DEPLOY / "docker-compose.yml").read_bytes()
    assert files["icon.png"] == (DEPLOY / "icon.png").read_bytes()
    # The plain `docker save` tar went in gzipped, under the name the manifest gives it.
    assert gzip.decompress(files[IMAGE_MEMBER]) == image_tar.read_bytes()
    assert summary.image == IMAGE and summary.platforms == ("linux/arm64",)
    assert check_spx(out).members == summary.members
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary files left


def test_gzipped_image_archive_goes_in_unchanged(tmp_path):
    image = write_docker_save(tmp_path / "img.tar.gz", [IMAGE], gz=True)
    out = build_spx(image, tmp_path / "x.spx").path
    assert _members(out)[IMAGE_MEMBER] == image.read_bytes()


def test_version_sets_manifest_and_image_tag_but_not_the_deploy_files(tmp_path):
    image = write_docker_save(tmp_path / "img.tar", ["spot-cue-agent:2.5.1"])
    before = {p.name: p.read_bytes() for p in DEPLOY.iterdir() if p.is_file()}
    summary = build_spx(image, tmp_path / "x.spx", version="2.5.1")
    files = _members(summary.path)
    assert json.loads(files["manifest.json"])["version"] == "2.5.1"
    compose_text = files["docker-compose.yml"].decode()
    assert (
        yaml.safe_load(compose_text)["services"]["spot-cue-agent"]["image"]
        == "spot-cue-agent:2.5.1"
    )
    assert "# CORE I/O's firewall opens" in compose_text  # comments kept for whoever edits it
    assert {p.name: p.read_bytes() for p in DEPLOY.iterdir() if p.is_file()} == before


def test_amd64_image_is_refused_for_core_io_and_accepted_when_asked(tmp_path):
    image = write_docker_save(tmp_path / "img.tar", [IMAGE], arch="amd64")
    with pytest.raises(PackageError, match=r"built for linux/amd64 but linux/arm64 is required"):
        build_spx(image, tmp_path / "x.spx")
    assert build_spx(image, tmp_path / "y.spx", arch="amd64").platforms == ("linux/amd64",)


def test_image_without_the_compose_tag_is_refused_naming_both(tmp_path):
    image = write_docker_save(tmp_path / "img.tar", ["spot-cue-agent:dev"])
    with pytest.raises(PackageError) as err:
        build_spx(image, tmp_path / "x.spx")
    assert "['spot-cue-agent:dev']" in str(err.value) and repr(IMAGE) in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"version": "1.2"}, "--version must be X.Y.Z"),
        ({"arch": "riscv64"}, "--arch must be one of"),
        ({"out": "ext.tar.gz"}, "must end in .spx"),
    ],
)
def test_bad_options_are_refused(tmp_path, image_tar, kwargs, complaint):
    if "out" in kwargs:
        kwargs["out"] = tmp_path / kwargs["out"]
    with pytest.raises(PackageError, match=complaint):
        build_spx(image_tar, **kwargs)


def test_failed_build_loses_nothing(tmp_path):
    out = tmp_path / "spot-cue-agent.spx"
    out.write_bytes(b"the extension that worked yesterday")
    wrong = write_docker_save(tmp_path / "img.tar", [IMAGE], arch="amd64")
    with pytest.raises(PackageError):
        build_spx(wrong, out)
    assert out.read_bytes() == b"the extension that worked yesterday"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.tar", "spot-cue-agent.spx"]


def test_invalid_deploy_files_are_reported_together(tmp_path, image_tar):
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    (deploy / "manifest.json").write_text(json.dumps({**MANIFEST, "version": "1.0"}))
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    compose["services"]["spot-cue-agent"]["logging"] = {"driver": "json-file"}
    (deploy / "docker-compose.yml").write_text(yaml.safe_dump(compose))
    (deploy / "icon.png").write_bytes((DEPLOY / "icon.png").read_bytes())
    with pytest.raises(PackageError) as err:
        build_spx(image_tar, tmp_path / "x.spx", deploy_dir=deploy)
    assert "version must be X.Y.Z" in str(err.value) and "journald" in str(err.value)


# ------------------------------------------------------------------------------------ checking
def _good_files(tmp_path: Path) -> dict[str, bytes]:
    built = build_spx(write_docker_save(tmp_path / "img.tar", [IMAGE]), tmp_path / "good.spx")
    return _members(built.path)


@pytest.mark.parametrize(
    ("mutate", "complaint"),
    [
        (lambda f: f.pop("docker-compose.yml"), "docker-compose.yml missing"),
        (lambda f: f.pop(IMAGE_MEMBER), f"names {IMAGE_MEMBER!r} but the archive lacks it"),
        (lambda f: f.pop("icon.png"), "icon 'icon.png' is not in the archive"),
        (lambda f: f.update({"sub/extra.txt": b"x"}), "top level"),
        (lambda f: f.update({"manifest.json": b"{not json"}), "manifest.json is not valid JSON"),
        (
            lambda f: f.update({IMAGE_MEMBER: gzip.compress(docker_save_bytes(["other:1.0.0"]))}),
            f"no image archive in the extension holds {IMAGE!r}",
        ),
    ],
)
def test_check_finds_what_is_wrong_with_an_spx(tmp_path, mutate, complaint):
    files = _good_files(tmp_path)
    mutate(files)
    bad = _write_spx(tmp_path / "bad.spx", files)
    with pytest.raises(
        PackageError, match=complaint.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    ):
        check_spx(bad)


def test_check_refuses_a_file_that_is_not_gzip(tmp_path):
    plain = tmp_path / "plain.spx"
    with tarfile.open(plain, "w") as tar:
        tar.add(DEPLOY / "manifest.json", arcname="manifest.json")
    with pytest.raises(PackageError, match="not a gzip tarball"):
        check_spx(plain)


# ---------------------------------------------------------------------------------------- CLI
@pytest.fixture
def cli() -> typer.Typer:
    """The command as `spot-agent package` is: the same function under a typer app."""
    app = typer.Typer()
    app.command("package")(package_command)

    @app.command("other")
    def _other() -> None:  # a second command keeps "package" a subcommand, as in spot-agent
        pass

    return app


def test_cli_builds_then_checks(tmp_path, image_tar, cli):
    runner = CliRunner()
    out = tmp_path / "cli.spx"
    built = runner.invoke(cli, ["package", str(image_tar), "--out", str(out)])
    assert built.exit_code == 0, built.output
    assert f"built: {out}" in built.output and IMAGE_MEMBER in built.output
    checked = runner.invoke(cli, ["package", "--check", str(out)])
    assert checked.exit_code == 0, checked.output
    assert (
        f"ok: {out} (extension spot-cue-agent {MANIFEST['version']}, image {IMAGE}, linux/arm64)"
        in checked.output
    )


def test_cli_errors_are_one_clear_line_and_exit_2(tmp_path, cli):
    result = CliRunner().invoke(cli, ["package", str(tmp_path / "missing.tar")])
    assert result.exit_code == 2
    assert f"error: {tmp_path / 'missing.tar'}: image archive not found" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["package"])
    assert result.exit_code == 2 and "missing the image archive" in result.output


def test_spot_agent_has_the_package_command():
    from agent.cli import _register, app

    _register()
    assert "package" in [c.name for c in app.registered_commands]
