"""Reading deploy/kubernetes for the tests: the files, kustomize's output, and what a pod runs.

:func:`assemble` puts a kustomization's resources together the way kustomize does for
the features these manifests use (resources, a configMapGenerator, namespace), so the
checks against the code run without kubectl; :func:`render` asks ``kubectl kustomize``
itself, which the tests also check when kubectl is installed.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import typer.main
import yaml

from fakeblock.control.cli.app import app

REPOSITORY = Path(__file__).resolve().parents[1]
KUBERNETES = REPOSITORY / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
TWO_CAMERAS = KUBERNETES / "overlays" / "two-cameras"
KUSTOMIZATIONS = {"base": KUBERNETES, "two-cameras": TWO_CAMERAS}
KUSTOMIZATION_FILE = "kustomization.yaml"
SITE_KEY = "site.toml"
SITE_CONFIG_MAP = "fakeblock-site"
RENDER_TIMEOUT_S = 60
README_FOLDER = "keys"  # the key folder the Kubernetes page's commands make and read
KUBERNETES_PAGE = "docs/kubernetes.md"


def manifest_files() -> list[Path]:
    """Every Kubernetes manifest under deploy/kubernetes (kustomizations are kustomize's, not the API's)."""
    return sorted(path for path in KUBERNETES.rglob("*.yaml") if path.name != KUSTOMIZATION_FILE)


def load_documents(text: str) -> list[dict]:
    """The YAML documents of ``text``, empty ones left out."""
    return [document for document in yaml.safe_load_all(text) if document]


def readme_section() -> str:
    """The Kubernetes page of the docs (docs/kubernetes.md)."""
    return (REPOSITORY / KUBERNETES_PAGE).read_text()


def readme_secret(name: str) -> dict[str, str]:
    """Secret key -> file, of the Kubernetes page's ``kubectl create secret generic NAME`` (paths from where it ran
    ``fakeblock keys generate keys``)."""
    text = readme_section().replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if f"create secret generic {name} " in line]
    files = {}
    for word in shlex.split(line.split("#", 1)[0]):
        if word.startswith("--from-file="):
            key, _, path = word.removeprefix("--from-file=").rpartition("=")
            files[key or Path(path).name] = path
    return files


def kubectl() -> str | None:
    """The kubectl on PATH, if any."""
    return shutil.which("kubectl")


def render(directory: Path) -> list[dict]:
    """``kubectl kustomize directory``, parsed (the caller checks that kubectl exists)."""
    done = subprocess.run([str(kubectl()), "kustomize", str(directory)], capture_output=True, text=True,
                          timeout=RENDER_TIMEOUT_S)
    assert done.returncode == 0, f"kubectl kustomize {directory} failed: {done.stderr}"
    return load_documents(done.stdout)


def assemble(directory: Path) -> list[dict]:
    """The resources of a kustomization without kustomize: its files and bases, its namespace,
    and its configMapGenerator's ConfigMaps (``behavior: replace`` replacing a base's)."""
    kustomization = yaml.safe_load((directory / KUSTOMIZATION_FILE).read_text())
    resources: list[dict] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        resources += assemble(path) if path.is_dir() else load_documents(path.read_text())
    for generator in kustomization.get("configMapGenerator", []):
        data = {Path(name).name: (directory / name).read_text() for name in generator["files"]}
        config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data}
        if generator.get("behavior") == "replace":
            resources = [resource for resource in resources
                         if (resource["kind"], resource["metadata"]["name"]) != ("ConfigMap", generator["name"])]
        resources.append(config_map)
    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] != "Namespace":
                resource["metadata"]["namespace"] = kustomization["namespace"]
    return resources


def of_kind(resources: list[dict], kind: str) -> dict[str, dict]:
    """Name -> resource, for the resources of one kind."""
    return {resource["metadata"]["name"]: resource for resource in resources if resource["kind"] == kind}


def site_text(resources: list[dict]) -> str:
    """The site file the pods mount: the fakeblock-site ConfigMap's (kustomize adds a hash to its name)."""
    config_maps = [resource for resource in resources if resource["kind"] == "ConfigMap"
                   and resource["metadata"]["name"].startswith(SITE_CONFIG_MAP)]
    assert len(config_maps) == 1, [resource["metadata"]["name"] for resource in config_maps]
    return config_maps[0]["data"][SITE_KEY]


def parse_command_line(arguments: list[str]):
    """Parse ``fakeblock ARGUMENTS`` with the real CLI, without running it (as tests/test_compose.py does)."""
    commands = typer.main.get_command(app).commands
    assert arguments[0] in commands, f"fakeblock has no command {arguments[0]!r}"
    return commands[arguments[0]].make_context(arguments[0], list(arguments[1:]))


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether a matchLabels selector picks an object with ``labels``."""
    return all(labels.get(key) == value for key, value in selector.items())


@dataclass(frozen=True)
class Pod:
    """One Deployment's pod template, as the tests look at it."""

    deployment: dict

    @property
    def name(self) -> str:
        """The Deployment's name."""
        return self.deployment["metadata"]["name"]

    @property
    def spec(self) -> dict:
        """The pod spec."""
        return self.deployment["spec"]["template"]["spec"]

    @property
    def labels(self) -> dict[str, str]:
        """The pod template's labels."""
        return self.deployment["spec"]["template"]["metadata"]["labels"]

    @property
    def container(self) -> dict:
        """The one fakeblock container."""
        (container,) = self.spec["containers"]
        return container

    def command(self):
        """The container's arguments parsed as a fakeblock command line (the image's entry point is fakeblock)."""
        assert "command" not in self.container, "the image's entry point, fakeblock, runs the container"
        return parse_command_line(self.container["args"])

    def container_ports(self) -> dict[str, int]:
        """Port name -> container port."""
        return {port["name"]: port["containerPort"] for port in self.container.get("ports", [])}

    def volume(self, name: str) -> dict:
        """The pod volume called ``name``."""
        (volume,) = [volume for volume in self.spec["volumes"] if volume["name"] == name]
        return volume

    def mounts(self, container: dict | None = None) -> dict[str, dict]:
        """Mount path -> volume mount, of ``container`` (default: the fakeblock container)."""
        return {mount["mountPath"]: mount for mount in (container or self.container).get("volumeMounts", [])}

    def mount_of(self, path: str, container: dict | None = None) -> dict:
        """The volume mount that holds ``path`` (the longest mount path it is under)."""
        holders = [mount for mount_path, mount in self.mounts(container).items()
                   if Path(path).is_relative_to(mount_path)]
        assert holders, f"{self.name}: {path} is on the read-only root filesystem"
        return max(holders, key=lambda mount: len(mount["mountPath"]))


def pods(resources: list[dict]) -> dict[str, Pod]:
    """Deployment name -> its :class:`Pod`."""
    return {name: Pod(deployment) for name, deployment in of_kind(resources, "Deployment").items()}
