"""Read shmframe segments from Python without copying: pyarrow and numpy views.

    shmframe gen matrix --rows 100000 --cols 16 --dtype f64 --seed 1 --out /tmp/x.npy
    shmframe load /tmp/x.npy --name demo_x          # prints /dev/shm/shmframe.demo_x
    python examples/python_reads_shm.py /dev/shm/shmframe.demo_x
    shmframe rm demo_x

Any segment works the same way, a job's output included (its path is printed by the library
as `frame.path()`): a shmframe segment is a valid Arrow IPC file.
"""

import sys

import numpy as np
import pyarrow as pa


def main(path: str) -> None:
    before = pa.total_allocated_bytes()
    source = pa.memory_map(path)  # maps /dev/shm/...: no read, no copy
    table = pa.ipc.open_file(source).read_all()
    col = table.column(0).chunk(0)
    print(f"{path}: {table.num_rows} rows, schema {table.schema}")
    if pa.types.is_fixed_size_list(col.type):
        width = col.type.list_size
        values = col.values.to_numpy(zero_copy_only=True)  # a view into the mapping
        matrix = values.reshape(-1, width)
        print("first row:", matrix[0][: min(width, 8)])
        print("numpy row norms (first 3):", np.linalg.norm(matrix[:3], axis=1))
    else:
        print("first values:", col.to_numpy(zero_copy_only=False)[:5])
    print("bytes pyarrow allocated while reading:", pa.total_allocated_bytes() - before)


if __name__ == "__main__":
    main(sys.argv[1])
