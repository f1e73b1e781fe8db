"""Where a job's media may come from: which local folders, which network addresses.

Local paths are a way to read the server's own files (they are linked into the draft and come
back in ``draft.zip``), so they are accepted only under ``local_media_roots``, after symlinks
and ``..`` are resolved, and the refusal reads the same whether or not the path exists.

URLs are fetched by aria2c from this machine, so they could reach services only this machine
can: our own API and aria2's RPC port are always refused, and ``url_deny_networks`` keeps jobs
off the networks a deployment names (checked on the address a name resolves to).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from draftdl.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

NO_LOCAL = (
    "local file paths are not accepted by this server: send an http(s) URL, or name the "
    "folder in the local_media_roots setting (e.g. DRAFTDL_LOCAL_MEDIA_ROOTS='[\"/srv/media\"]')"
)
OUTSIDE = (
    "local file paths are accepted only inside the folders of the local_media_roots setting; "
    "this one is not inside any of them"
)


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses a name stands for; none when it does not resolve (aria2 fails it then)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def is_this_machine(address: Address) -> bool:
    """Loopback, or the 'any' address, which connects to this machine too."""
    return address.is_loopback or address.is_unspecified


@dataclass
class SourcePolicy:
    local_roots: tuple[Path, ...] = ()
    own_ports: frozenset[int] = frozenset()  # ports of this service on this machine
    deny_networks: tuple[Network, ...] = ()
    resolver: Resolver = resolve_host
    _resolved: dict[tuple[str, int], list[Address]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        local_roots: Iterable[Path],
        own_ports: Iterable[int | None],
        deny_networks: Iterable[str],
        resolver: Resolver = resolve_host,
    ) -> SourcePolicy:
        return cls(
            local_roots=tuple(Path(os.path.realpath(p)) for p in local_roots),
            own_ports=frozenset(p for p in own_ports if p),
            deny_networks=tuple(ipaddress.ip_network(n, strict=False) for n in deny_networks),
            resolver=resolver,
        )

    def fresh(self) -> SourcePolicy:
        """A copy with an empty name cache, for one job."""
        return SourcePolicy(self.local_roots, self.own_ports, self.deny_networks, self.resolver)

    # -- local files ----------------------------------------------------------------------

    def local_problem(self, value: str, must_exist: bool) -> str | None:
        """Why a local path is refused, or None. Outside the roots, the answer never depends
        on what is on disk."""
        if not self.local_roots:
            return NO_LOCAL
        try:
            real = Path(os.path.realpath(os.path.abspath(value)))
        except (OSError, ValueError):
            return OUTSIDE
        if not any(real == root or real.is_relative_to(root) for root in self.local_roots):
            return OUTSIDE
        if must_exist and not real.is_file():
            return f"local file {value!r} does not exist"
        return None

    # -- network addresses ----------------------------------------------------------------

    def url_problem(self, host: str, port: int) -> str | None:
        """Why a URL's host and port are refused, or None."""
        if port not in self.own_ports and not self.deny_networks:
            return None  # nothing to check: no name lookup at all
        for address in self._addresses(host, port):
            problem = self.address_problem(host, address, port)
            if problem:
                return problem
        return None

    def address_problem(self, host: str, address: Address, port: int) -> str | None:
        """Why connecting to ``address`` (what ``host`` resolved to) is refused, or None."""
        if port in self.own_ports and is_this_machine(address):
            return (
                f"this URL points at draftdl's own service ({host}:{port}, the API or "
                "aria2's RPC port); jobs may not fetch from it"
            )
        for network in self.deny_networks:
            if address.version == network.version and address in network:
                return (
                    f"the host {host} ({address}) is in {network}, which the "
                    "url_deny_networks setting keeps jobs away from"
                )
        return None

    def _addresses(self, host: str, port: int) -> list[Address]:
        try:
            return [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            pass
        key = (host.lower(), port)
        if key not in self._resolved:
            found: list[Address] = []
            for text in self.resolver(host, port):
                try:
                    found.append(ipaddress.ip_address(text.split("%", 1)[0]))
                except ValueError:
                    continue
            self._resolved[key] = found
        return self._resolved[key]


def policy_from(settings: Settings, *own_ports: int | None) -> SourcePolicy:
    """The policy ``settings`` describe; ``own_ports`` are this service's other ports."""
    return SourcePolicy.build(
        settings.local_media_roots, (settings.port, *own_ports), settings.url_deny_networks
    )
