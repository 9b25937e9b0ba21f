"""Item pools: authored items + a pool configuration → a calibrated bank, a pass standard and an exam design.

A pool directory (``item_pools/cmcs``, ``item_pools/cmrs``) holds what people write:

* ``items.toml`` -- the authored items (``[[item]]`` tables: id, domain, subdomain,
  cognitive_level, code_set, code_set_year, status, enemies, stem, options, key, rationale);
* ``pool.toml`` -- the bank's name and version, the blueprint (domains, proportions and
  their sources), the simulated field test, the calibration settings, the pass standard
  and the adaptive exam design;

and what :func:`build_pool` writes from them, exactly reproducibly from the seed:

* ``bank.json`` -- content + parameters calibrated by :func:`adaptive.calibrate` on the
  simulated field test, with provenance per item;
* ``design.json`` -- the exam design with the θ cut of the pass standard;
* ``standard.json`` -- how the cut was derived (reference form, raw cut, TCC inversion,
  conditional SE at the cut).

The field test is a simulation, because no response data from real candidates exist
for these items: generating ("true") parameters are drawn per item from distributions
that depend on the item's cognitive level, candidates answer a spiraled multi-form
design with common anchor items, and the calibration module recovers the parameters
the bank then carries. The generating parameters are never stored in the bank; they are
returned by :func:`build_pool` so the recovery can be reported.

Pass standards (see ``item_pools/README.md`` for the reasoning):

* ``raw_cut``: "R of L correct" on a reference form of L operational items drawn to the
  blueprint; θ* solves TCC(θ*) = R (Ferdous & Plake 2008; the usual IRT translation of
  an Angoff-type raw cut);
* ``percent``: "p of the maximum score" on the reference form; θ* solves TCC(θ*) = p·L.
"""

from .build import PoolBuild, build_pool, reference_form, write_pool
from .check import PoolInfo, check_pool, content_warnings, pool_info
from .config import AuthoredItem, PoolConfig, load_authored_items, load_pool_config

__all__ = [
    "AuthoredItem",
    "PoolBuild",
    "PoolConfig",
    "PoolInfo",
    "build_pool",
    "check_pool",
    "content_warnings",
    "load_authored_items",
    "load_pool_config",
    "pool_info",
    "reference_form",
    "write_pool",
]
