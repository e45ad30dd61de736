"""The batched peer of issue 16: vLLM's default policy with its balanced packing vectorised
across layers, written from the description of vLLM PR 52556 (the j-th heaviest item of every
layer is packed at once, each to its layer's lightest pack that still has room). Copied next to
vLLM's `default.py` by `fetch.sh`; `drive.py` checks that it gives the default policy's
placement before it times anything."""
import numpy as np

from .default import DefaultEplbPolicy


class BatchedEplbPolicy(DefaultEplbPolicy):
    @classmethod
    def balanced_packing(cls, weight, num_packs):
        num_layers, num_items = weight.shape
        per_pack = num_items // num_packs
        if per_pack == 1:
            pack_index = np.tile(np.arange(num_items, dtype=np.int64), (num_layers, 1))
            return pack_index, np.zeros_like(pack_index)
        order = np.argsort(-weight, axis=-1)
        pack_index = np.full((num_layers, num_items), -1, dtype=np.int64)
        rank_in_pack = np.full((num_layers, num_items), -1, dtype=np.int64)
        loads = np.zeros((num_layers, num_packs), dtype=np.float64)
        counts = np.zeros((num_layers, num_packs), dtype=np.int64)
        rows = np.arange(num_layers)
        for j in range(num_items):
            item = order[:, j]
            pack = np.argmin(loads, axis=1)
            pack_index[rows, item] = pack
            rank_in_pack[rows, item] = counts[rows, pack]
            loads[rows, pack] += weight[rows, item]
            counts[rows, pack] += 1
            full = counts[rows, pack] == per_pack
            loads[rows[full], pack[full]] = np.inf
        return pack_index, rank_in_pack
