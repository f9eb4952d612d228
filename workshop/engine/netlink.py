"""Network links through netlink (pyroute2), imported only by lessons and cleanup that touch the network.

pyroute2's synchronous API refuses to run inside a running asyncio loop (prompt_toolkit's), so callers use it
between prompts, never from a key binding or completer.
"""

from __future__ import annotations


def delete_link(name: str) -> bool:
    """Deletes a link in the tool's network namespace; False if there is no link of that name."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            return False
        ipr.link("del", index=found[0])
        return True
