"""Where a job's media may come from: which local folders, which network addresses.

Local paths are a way to read the server's own files (they are linked into the draft and come
back in ``draft.zip``), so they are accepted only under ``local_media_roots``, after symlinks
and ``..`` are resolved, and the refusal reads the same whether or not the path exists. The
builder checks again when it reads the file.

URLs are fetched by aria2c from this machine, so they could reach services only this machine
can: our own API and aria2's RPC port are always refused, and ``url_deny_networks`` keeps jobs
off the networks a deployment names. Addresses are compared in one form: an IPv4 address
written as IPv6 (``::ffff:10.0.0.1``, NAT64 ``64:ff9b::a00:1``) is that IPv4 address.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # not imported at run time: draft build workers import this module
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
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# A job names at most this many host names that are looked up at submit, within this many
# seconds in all; the rest pass here (the egress guard checks each connection anyway).
MAX_LOOKUPS = 32
LOOKUP_BUDGET = 3.0
_lookups = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="lookup")


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses a name stands for; none when it does not resolve (aria2 fails it then)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def parse_address(text: str) -> Address | None:
    """An address in the one form every check uses (IPv4 in IPv6 clothing unwrapped)."""
    try:
        address = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def is_this_machine(address: Address) -> bool:
    """Loopback, or the 'any' address, which connects to this machine too."""
    return address.is_loopback or address.is_unspecified


@dataclass(frozen=True)
class SourcePolicy:
    local_roots: tuple[Path, ...] = ()
    own_ports: frozenset[int] = frozenset()  # ports of this service on this machine
    deny_networks: tuple[Network, ...] = ()
    resolver: Resolver = resolve_host

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

    def with_ports(self, *own_ports: int | None) -> SourcePolicy:
        return SourcePolicy(
            self.local_roots,
            self.own_ports | {p for p in own_ports if p},
            self.deny_networks,
            self.resolver,
        )

    # -- local files ----------------------------------------------------------------------

    def local_problem(self, value: str, must_exist: bool) -> str | None:
        """Why a local path is refused, or None. Outside the roots, the answer never depends
        on what is on disk."""
        if self.resolved_local(value) is None:
            return NO_LOCAL if not self.local_roots else OUTSIDE
        if must_exist and not os.path.isfile(os.path.realpath(os.path.abspath(value))):
            return f"local file {value!r} does not exist"
        return None

    def resolved_local(self, value: str) -> Path | None:
        """The real path of ``value`` when it lies inside a root, else None."""
        if not self.local_roots:
            return None
        try:
            real = Path(os.path.realpath(os.path.abspath(value)))
        except (OSError, ValueError):
            return None
        if any(real == root or real.is_relative_to(root) for root in self.local_roots):
            return real
        return None

    # -- network addresses ----------------------------------------------------------------

    def needs_lookup(self, port: int) -> bool:
        return port in self.own_ports or bool(self.deny_networks)

    def url_problems(self, targets: set[tuple[str, int]]) -> dict[tuple[str, int], str]:
        """Why each refused (host, port) is refused. Literal addresses are checked as they
        are; names are looked up together, at most ``MAX_LOOKUPS`` within ``LOOKUP_BUDGET``."""
        out: dict[tuple[str, int], str] = {}
        names: list[tuple[str, int]] = []
        for host, port in targets:
            if not self.needs_lookup(port):
                continue
            literal = parse_address(host)
            if literal is None:
                names.append((host, port))
            elif problem := self.address_problem(host, literal, port):
                out[(host, port)] = problem
        asked = {
            _lookups.submit(self.resolver, host, port): (host, port)
            for host, port in sorted(names)[:MAX_LOOKUPS]
        }
        done, _late = concurrent.futures.wait(asked, timeout=LOOKUP_BUDGET)
        for future in done:
            host, port = asked[future]
            for text in future.result():
                address = parse_address(text)
                if address is not None and (problem := self.address_problem(host, address, port)):
                    out[(host, port)] = problem
                    break
        return out

    def address_problem(self, host: str, address: Address, port: int) -> str | None:
        """Why connecting to ``address`` (what ``host`` stands for) is refused, or None."""
        address = parse_address(str(address)) or address
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


def policy_from(settings: Settings, *own_ports: int | None) -> SourcePolicy:
    """The policy ``settings`` describe; ``own_ports`` are this service's other ports."""
    return SourcePolicy.build(
        settings.local_media_roots, (settings.port, *own_ports), settings.url_deny_networks
    )
