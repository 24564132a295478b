"""Data parallelism for the Solver's compiled JAX step: one minibatch sharded over devices.

A :class:`DataParallel` holds a ``jax.sharding.Mesh`` with a ``batch`` axis. Every
minibatch is a global array split along its first axis over that axis; parameters, model
state (batch-norm running averages) and optimizer state are replicated. The step is the
same ``jax.jit`` function as on one device: XLA partitions it and inserts the reductions
(the gradient sums, and batch norm's mean and variance, which are therefore taken over the
whole global batch, exactly as on one device). Nothing here moves data between devices by
hand.

Across processes (``jax.distributed``) the mesh spans every process's devices. Each
process holds only its shard of the data and supplies its rows of each global batch
(``jax.make_array_from_process_local_data``).

Sampling. With ``D`` devices on the batch axis, the training rows are split into ``D``
equal parts, in process order and then device order (each process's shard into its
devices' parts, ``s`` rows each; at most ``D - 1`` rows left over are not drawn). Each
step draws ``B / D`` rows with replacement from every part, from one random stream that
every process runs identically. So the global batch, and the run, are the same whether
the ``D`` devices sit in one process or in several; with ``D == 1`` the draw is the
Solver's usual ``rng.choice(N, B)``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ._params import count

__all__ = ["BATCH_AXIS", "DataParallel"]

#: The name of the mesh axis that the minibatch is split over.
BATCH_AXIS = "batch"


class DataParallel:
    """A mesh with a ``batch`` axis, and how the Solver's arrays are placed on it.

    Parameters
    ----------
    devices : int, sequence of jax.Device, or jax.sharding.Mesh
        An int N takes the first N of ``jax.devices()`` (every process's, in a
        multi-process run). A mesh must have an axis named ``'batch'``; arrays are
        replicated over its other axes.

    Attributes
    ----------
    mesh : jax.sharding.Mesh
    size : int
        Devices along the batch axis (``D``).
    local_size : int
        Of those, this process's (``D / jax.process_count()``).
    first_part : int
        Index of this process's first part of the data.
    """

    def __init__(self, devices: int | Sequence[Any] | Mesh):
        self.mesh = _mesh(devices)
        self.size = self.mesh.shape[BATCH_AXIS]
        self.batch_sharding = NamedSharding(self.mesh, PartitionSpec(BATCH_AXIS))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        # Checked on the mesh, which every process sees whole, so that every process
        # raises alike (one refusing alone would leave the others waiting in a collective).
        owners = _process_of_each_batch_index(self.mesh)
        processes = jax.process_count()
        local_size = self.size // processes
        if owners != [i // local_size for i in range(self.size)] or self.size % processes:
            raise ValueError(
                f"devices: the batch axis must hold the same number of devices of each of the "
                f"{processes} process(es), each process's together and in process order (as "
                f"jax.devices() lists them); its devices belong to processes {owners}"
            )
        self.local_size = local_size
        self.first_part = jax.process_index() * local_size
        self._part_sizes: dict[int, int] = {}

    # ------------------------------------------------------------------ checks

    def check_divides(self, batch_size: int, name: str = "batch_size") -> None:
        """A ValueError unless ``batch_size`` splits evenly over the batch axis."""
        if batch_size % self.size:
            raise ValueError(
                f"{name} {batch_size} does not split over the {self.size} devices of the "
                f"batch axis; use a multiple of {self.size}"
            )

    def part_size(self, local_rows: int, what: str = "X") -> int:
        """Rows per device part of this process's ``local_rows``, equal on every process."""
        if local_rows in self._part_sizes:
            return self._part_sizes[local_rows]
        size = local_rows // self.local_size
        sizes = self.gather(size)
        if size < 1 or len(set(sizes.tolist())) > 1:
            raise ValueError(
                f"{what} must give every device at least one row and every process the same "
                f"number of rows per device; rows per device, by process: {sizes.tolist()}"
            )
        self._part_sizes[local_rows] = size
        return size

    # ------------------------------------------------------------------ sampling

    def sample(self, rng: Any, local_rows: int, count: int, what: str = "X_train") -> np.ndarray:
        """This process's rows of a global draw of ``count`` rows (see the module's doc).

        ``count`` must divide by :attr:`size`. Returns indices into this process's data,
        in the order of its devices.
        """
        if self.size == 1:
            return rng.choice(local_rows, count)
        part = self.part_size(local_rows, what)
        draws = rng.choice(part, (self.size, count // self.size))
        mine = draws[self.first_part : self.first_part + self.local_size]
        return (mine + part * np.arange(self.local_size)[:, None]).reshape(-1)

    # ------------------------------------------------------------------ placement

    def shard_batch(self, *local: Any) -> tuple[Any, ...]:
        """Global arrays split over the batch axis, from this process's rows.

        In one process the rows go to their devices with ``jax.device_put`` onto the
        batch sharding: a minibatch already on a device moves device to device, never
        through the host. Across processes each contributes its rows as host data
        (``jax.make_array_from_process_local_data``), where they are in such runs.
        """
        if jax.process_count() == 1:
            return tuple(jax.device_put(a, self.batch_sharding) for a in local)
        return tuple(
            jax.make_array_from_process_local_data(self.batch_sharding, np.asarray(a))
            for a in local
        )

    def replicate(self, tree: Any) -> Any:
        """Every array of ``tree`` replicated on the mesh (already placed ones are kept).

        In a multi-process run the values come from process 0 (broadcast to the others),
        as DistributedDataParallel does with the initial weights, so that processes whose
        models or checkpoints differ still train one model.
        """
        leaves, structure = jax.tree.flatten(tree)
        todo = [
            i
            for i, leaf in enumerate(leaves)
            if not (isinstance(leaf, jax.Array) and leaf.sharding == self.replicated)
        ]
        if todo and jax.process_count() == 1:  # device to device, not through the host
            for i in todo:
                leaves[i] = jax.device_put(leaves[i], self.replicated)
        elif todo:
            values = [self.to_host(leaves[i]) for i in todo]
            if jax.process_count() > 1:
                values = multihost_utils.broadcast_one_to_all(values)
            for i, value in zip(todo, values, strict=True):
                leaves[i] = jax.make_array_from_process_local_data(
                    self.replicated, np.asarray(value)
                )
        return jax.tree.unflatten(structure, leaves)

    @staticmethod
    def to_host(array: Any) -> np.ndarray:
        """The value of a replicated (or any fully addressable) array, as NumPy: an
        explicit ``jax.device_get``, which the transfer guard allows."""
        if isinstance(array, jax.Array) and not array.is_fully_addressable:
            array = array.addressable_data(0)
        return np.asarray(jax.device_get(array))

    def gather(self, value: int) -> np.ndarray:
        """One host integer from every process, in process order."""
        if jax.process_count() == 1:
            return np.asarray([value])
        return np.asarray(multihost_utils.process_allgather(np.asarray(value))).reshape(-1)


def _mesh(devices: int | Sequence[Any] | Mesh) -> Mesh:
    if isinstance(devices, Mesh):
        if BATCH_AXIS not in devices.axis_names:
            raise ValueError(
                f"devices: the mesh needs an axis named {BATCH_AXIS!r}; its axes are "
                f"{devices.axis_names}"
            )
        # The same devices with automatic axes (jax.make_mesh makes explicit ones): the
        # step is plain array code, and XLA chooses the shardings inside it.
        return Mesh(devices.devices, devices.axis_names)
    available = jax.devices()
    if isinstance(devices, np.ndarray):
        devices = list(devices.reshape(-1))
    if isinstance(devices, numbers.Number):  # 2, np.int64(2); 2.0 and True: a TypeError
        devices = count("devices", devices, minimum=1)
    if isinstance(devices, str) or not isinstance(devices, (int, Sequence)):
        raise ValueError(
            "devices must be a positive int, a sequence of JAX devices or a "
            f"jax.sharding.Mesh with a 'batch' axis; got {devices!r}"
        )
    if isinstance(devices, int):
        if devices > len(available):
            raise ValueError(
                f"devices={devices}, but JAX sees {len(available)} device(s) "
                f"({available[0].platform}); on the CPU, "
                f"XLA_FLAGS=--xla_force_host_platform_device_count={max(devices, 1)} "
                "before importing jax gives more"
            )
        devices = available[:devices]
    devices = list(devices)
    if not devices:
        raise ValueError("devices: an empty sequence; give at least one JAX device")
    strangers = [d for d in devices if not isinstance(d, jax.Device)]
    if strangers:
        raise ValueError(
            f"devices must hold jax.Device objects (from jax.devices()); got {strangers[0]!r}"
        )
    if len(set(devices)) < len(devices):
        raise ValueError(f"devices lists a device more than once: {devices}")
    return Mesh(np.asarray(devices), (BATCH_AXIS,))


def _process_of_each_batch_index(mesh: Mesh) -> list[int]:
    """The process owning each index of the batch axis (all devices along the others)."""
    axis = mesh.axis_names.index(BATCH_AXIS)
    grid = np.moveaxis(mesh.devices, axis, 0).reshape(mesh.shape[BATCH_AXIS], -1)
    owners = []
    for row in grid:
        processes = {device.process_index for device in row}
        if len(processes) != 1:
            raise ValueError(
                "devices: each index of the mesh's batch axis must hold devices of one process"
            )
        owners.append(processes.pop())
    return owners


def padded(count: int, multiple: int) -> int:
    """``count`` rounded up to a multiple of ``multiple``."""
    return math.ceil(count / multiple) * multiple
