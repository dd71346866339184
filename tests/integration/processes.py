"""The process tree and socket ownership, read from /proc: which worker holds which connection."""

from __future__ import annotations

import os
import time
from pathlib import Path

PROC = Path("/proc")


def parent_of(pid: int) -> int | None:
    """The parent pid, or None once the process is gone (a zombie counts as gone)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces; state and ppid follow it.
    state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
    return None if state in ("Z", "X") else int(ppid)


def alive(pid: int) -> bool:
    return parent_of(pid) is not None


def children(pid: int) -> list[int]:
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit() and parent_of(int(entry.name)) == pid:
            found.append(int(entry.name))
    return sorted(found)


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = children(pid)
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children(child))
    return sorted(found)


def wait_until_gone(pids: list[int], timeout_s: float) -> list[int]:
    """The pids still alive after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _tcp_rows() -> list[tuple[int, int, int]]:
    """(local port, remote port, inode) of every TCP socket in this network namespace."""
    rows = []
    for table in ("tcp", "tcp6"):
        for line in (PROC / "net" / table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            rows.append((int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16), inode))
    return rows


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    fd_dir = PROC / str(pid) / "fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(fd_dir / fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def server_side_owner(server_port: int, client_port: int, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the server end of the connection from ``client_port`` to ``server_port``."""
    inodes = {inode for local, remote, inode in _tcp_rows() if (local, remote) == (server_port, client_port)}
    for pid in pids:
        if inodes & _socket_inodes(pid):
            return pid
    return None


def own_client_ports(server_port: int) -> set[int]:
    """Local ports of this process's connections to ``server_port`` (e.g. the ones a gRPC channel opened)."""
    mine = _socket_inodes(os.getpid())
    return {local for local, remote, inode in _tcp_rows() if remote == server_port and inode in mine}
