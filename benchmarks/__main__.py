"""All benchmarks in one run: ``python -m benchmarks`` (or ``make bench``)."""
from benchmarks import (bench_batch, bench_chat, bench_class, bench_collect, bench_diagnose,
                        bench_iptables, bench_load, bench_size, bench_walk)

if __name__ == "__main__":
    bench_iptables.main()
    print()
    bench_diagnose.main()
    print()
    bench_class.main([])
    print()
    bench_walk.main()
    print()
    bench_chat.main()
    print()
    bench_batch.main()
    print()
    bench_collect.main()
    print()
    bench_size.main()
    print()
    bench_load.main()  # last: it exits non-zero when the server does not answer every request
