"""`spot-agent package`: .spx layout, consistency checks and clear errors on bad input."""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
from pathlib import Path

import pytest
import typer
import yaml
from support.deploy_support import DEPLOY, PROJECT_ROOT, docker_save_bytes, write_docker_save
from typer.testing import CliRunner

from deploy.extension import OPERATOR_KEYS_PATH, PAYLOAD_CREDENTIALS_PATH, PackageError
from deploy.image_archive import read_image_archive
from deploy.package import build_spx, check_spx, package_command

MANIFEST = json.loads((DEPLOY / "manifest.json").read_text())
IMAGE = f"{MANIFEST['extension_name']}:{MANIFEST['version']}"
IMAGE_MEMBER = MANIFEST["images"][0]
PAYLOAD_CONFIG = PROJECT_ROOT / "configs" / "payload.yaml"


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
    assert "# Bridge networking, as Boston Dynamics'" in compose_text  # comments kept
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


# ------------------------------------------------------------------- udev rules and extra files
UDEV_RULE = b'SUBSYSTEMS=="usb", ATTRS{idVendor}=="1546", SYMLINK+="gnss", MODE="0666"\n'


def _deploy_copy(tmp_path: Path, manifest: dict | None = None, service: dict | None = None) -> Path:
    """A copy of deploy/ with manifest fields and compose service keys changed."""
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    (deploy / "manifest.json").write_text(json.dumps({**MANIFEST, **(manifest or {})}))
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    compose["services"]["spot-cue-agent"].update(service or {})
    (deploy / "docker-compose.yml").write_text(yaml.safe_dump(compose))
    (deploy / "icon.png").write_bytes((DEPLOY / "icon.png").read_bytes())
    return deploy


def test_packs_udev_rules_and_extra_files(tmp_path, image_tar):
    udev = tmp_path / "99-gnss.rules"
    udev.write_bytes(UDEV_RULE)
    settings = tmp_path / "site.yaml"
    settings.write_text("site: lab\n")
    script = tmp_path / "probe.sh"
    script.write_text("#!/bin/sh\necho ok\n")
    script.chmod(0o755)
    summary = build_spx(
        image_tar, tmp_path / "x.spx", udev_rules=udev, extras=[settings, script]
    )
    files = _members(summary.path)
    assert json.loads(files["manifest.json"])["udev_rules"] == "99-gnss.rules"
    assert files["99-gnss.rules"] == UDEV_RULE
    assert files["site.yaml"] == b"site: lab\n"
    with tarfile.open(summary.path, "r:gz") as tar:
        assert tar.getmember("probe.sh").mode == 0o755  # scripts stay executable
        assert tar.getmember("site.yaml").mode == 0o644
    checked = check_spx(summary.path)
    assert checked.udev_rules == "99-gnss.rules"
    assert checked.extras == ("probe.sh", "site.yaml")
    assert json.loads((DEPLOY / "manifest.json").read_text()) == MANIFEST  # template unchanged


def test_udev_rules_the_manifest_names_come_from_the_deploy_folder(tmp_path, image_tar):
    deploy = _deploy_copy(tmp_path, manifest={"udev_rules": "99-gnss.rules"})
    with pytest.raises(PackageError, match=r"the udev rules: .*99-gnss.rules does not exist"):
        build_spx(image_tar, tmp_path / "x.spx", deploy_dir=deploy)
    (deploy / "99-gnss.rules").write_bytes(UDEV_RULE)
    summary = build_spx(image_tar, tmp_path / "x.spx", deploy_dir=deploy)
    assert _members(summary.path)["99-gnss.rules"] == UDEV_RULE


def test_a_symlinked_extra_goes_in_as_the_file_it_points_to(tmp_path, image_tar):
    real = tmp_path / "real.yaml"
    real.write_text("a: 1\n")
    link = tmp_path / "site.yaml"
    link.symlink_to(real)
    summary = build_spx(image_tar, tmp_path / "x.spx", extras=[link])
    with tarfile.open(summary.path, "r:gz") as tar:
        assert tar.getmember("site.yaml").isfile()
    assert _members(summary.path)["site.yaml"] == b"a: 1\n"


@pytest.mark.parametrize(
    ("name", "complaint"),
    [
        ("manifest.json", "would be packed as 'manifest.json', which is already the manifest"),
        ("docker-compose.yml", "which is already the compose file"),
        ("icon.png", "which is already the icon"),
        (IMAGE_MEMBER, "which is already the image archive"),
    ],
)
def test_extra_files_may_not_replace_the_extension_s_own(tmp_path, image_tar, name, complaint):
    extra = tmp_path / "mine" / name
    extra.parent.mkdir()
    extra.write_text("{}")
    with pytest.raises(PackageError, match=re.escape(complaint)):
        build_spx(image_tar, tmp_path / "x.spx", extras=[extra])
    assert not (tmp_path / "x.spx").exists()


def test_bad_extra_files_are_refused_with_the_reason(tmp_path, image_tar):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "site.yaml").write_text("x")
    (tmp_path / "b" / "site.yaml").write_text("y")
    with pytest.raises(PackageError, match="which is already extra file"):
        build_spx(image_tar, tmp_path / "x.spx",
                  extras=[tmp_path / "a" / "site.yaml", tmp_path / "b" / "site.yaml"])  # fmt: skip
    with pytest.raises(PackageError, match="missing.yaml does not exist"):
        build_spx(image_tar, tmp_path / "x.spx", extras=[tmp_path / "missing.yaml"])
    with pytest.raises(PackageError, match="is not a file"):
        build_spx(image_tar, tmp_path / "x.spx", extras=[tmp_path / "a"])
    rule = tmp_path / "99-gnss.rule"  # udev reads only *.rules
    rule.write_bytes(UDEV_RULE)
    with pytest.raises(PackageError, match=r"udev_rules must be a plain file name ending \.rules"):
        build_spx(image_tar, tmp_path / "x.spx", udev_rules=rule)


@pytest.mark.parametrize(
    "host_path",
    ["./site.yaml", "/data/.extensions/spot-cue-agent/site.yaml"],  # where CORE I/O installs it
)
def test_a_file_the_compose_file_mounts_must_be_packed(tmp_path, image_tar, host_path):
    creds = f"{PAYLOAD_CREDENTIALS_PATH}:{PAYLOAD_CREDENTIALS_PATH}:ro"
    keys = f"/data/spot-cue-agent/keys:{OPERATOR_KEYS_PATH}:ro"
    mount = f"{host_path}:/home/spot-agent/site.yaml:ro"
    deploy = _deploy_copy(tmp_path, service={"volumes": [creds, keys, mount]})
    with pytest.raises(PackageError, match="mounts 'site.yaml' from the extension's folder, but"):
        build_spx(image_tar, tmp_path / "x.spx", deploy_dir=deploy)
    (tmp_path / "site.yaml").write_text("site: lab\n")
    summary = build_spx(image_tar, tmp_path / "x.spx", deploy_dir=deploy,
                        extras=[tmp_path / "site.yaml"])  # fmt: skip
    assert summary.extras == ("site.yaml",)
    files = _members(summary.path)
    files.pop("site.yaml")
    with pytest.raises(PackageError, match="mounts 'site.yaml' from the extension's folder, but"):
        check_spx(_write_spx(tmp_path / "without.spx", files))


# ----------------------------------------------------------------- networking and the config
def test_builds_with_host_networking_too(tmp_path, image_tar):
    deploy = _deploy_copy(tmp_path, service={"network_mode": "host"})
    with pytest.raises(PackageError, match="ports has no effect with network_mode host"):
        build_spx(image_tar, tmp_path / "x.spx", deploy_dir=deploy)
    compose = yaml.safe_load((deploy / "docker-compose.yml").read_text())
    del compose["services"]["spot-cue-agent"]["ports"]
    (deploy / "docker-compose.yml").write_text(yaml.safe_dump(compose))
    assert build_spx(image_tar, tmp_path / "x.spx", deploy_dir=deploy).path.is_file()


def test_ports_are_checked_against_the_config_given(tmp_path, image_tar):
    config = yaml.safe_load(PAYLOAD_CONFIG.read_text())
    config["control"]["live_view"]["enabled"] = True
    live = tmp_path / "live.yaml"
    live.write_text(yaml.safe_dump(config))
    with pytest.raises(PackageError, match=r"live_view.port listens on 21502 but ports does not"):
        build_spx(image_tar, tmp_path / "x.spx", config=str(live))
    deploy = _deploy_copy(
        tmp_path, service={"ports": ["21500:21500", "21501:21501", "21502:21502"]}
    )
    built = build_spx(image_tar, tmp_path / "x.spx", deploy_dir=deploy, config=str(live))
    assert check_spx(built.path, config=str(live)).path == built.path
    with pytest.raises(PackageError, match="publishes 21502, which the agent config does not"):
        check_spx(built.path)  # against the shipped payload profile: live view off


def test_the_config_the_compose_command_names_is_the_one_checked(tmp_path, image_tar):
    deploy = _deploy_copy(tmp_path, service={"command": ["--config", "/opt/site/agent.yaml"]})
    with pytest.raises(PackageError) as err:
        build_spx(image_tar, tmp_path / "x.spx", deploy_dir=deploy)
    assert "cannot check the operator ports" in str(err.value)
    assert "/opt/site/agent.yaml" in str(err.value) and "give --config FILE" in str(err.value)
    assert build_spx(image_tar, tmp_path / "x.spx", deploy_dir=deploy,
                     config="payload").path.is_file()  # fmt: skip


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
        (
            lambda f: f.update({"manifest.json": _manifest_with(f, udev_rules="99-gnss.rules")}),
            "manifest udev_rules '99-gnss.rules' is not in the archive",
        ),
        (
            lambda f: f.update({"manifest.json": _manifest_with(f, udev_rules="99-gnss.rules"),
                                "99-gnss.rules": b"\xff\xfe\x00binary"}),
            "udev rules '99-gnss.rules' is not a text file",
        ),
        (
            lambda f: f.update({"manifest.json": _manifest_with(f, udev_rules="99-gnss.rules"),
                                "99-gnss.rules": b"# nothing yet\n"}),
            "udev rules '99-gnss.rules' holds no rule",
        ),
        (
            lambda f: f.update({"manifest.json": _manifest_with(f, extension_name="coreio-agent")}),
            "extension_name must not contain 'coreio'",
        ),
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


def _manifest_with(files: dict[str, bytes], **changes: str) -> bytes:
    return json.dumps({**json.loads(files["manifest.json"]), **changes}).encode()


def test_check_refuses_a_file_packed_twice(tmp_path):
    files = _good_files(tmp_path)
    bad = tmp_path / "twice.spx"
    with tarfile.open(bad, "w:gz") as tar:
        for name, data in [*files.items(), ("docker-compose.yml", b"services: {}\n")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(PackageError, match="docker-compose.yml: in the archive twice"):
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


def test_cli_packs_udev_rules_and_repeated_extras(tmp_path, image_tar, cli):
    udev = tmp_path / "99-gnss.rules"
    udev.write_bytes(UDEV_RULE)
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(name)
    out = tmp_path / "cli.spx"
    runner = CliRunner()
    built = runner.invoke(cli, [
        "package", str(image_tar), "--out", str(out), "--udev-rules", str(udev),
        "--extra", str(tmp_path / "a.yaml"), "--extra", str(tmp_path / "b.yaml"),
    ])  # fmt: skip
    assert built.exit_code == 0, built.output
    assert re.search(r"99-gnss.rules  \(udev rules\)", built.output), built.output
    assert re.search(r"a.yaml  \(extra\)", built.output) and "b.yaml  (extra)" in built.output
    checked = runner.invoke(cli, ["package", "--check", str(out)])
    assert checked.exit_code == 0 and "b.yaml  (extra)" in checked.output, checked.output
    mixed = runner.invoke(cli, ["package", "--check", str(out), "--extra", str(tmp_path / "a.yaml")])
    assert mixed.exit_code == 2 and "--check reads what the .spx holds" in mixed.output


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
