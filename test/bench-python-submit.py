#!/usr/bin/env python3
"""Python's side of test/benchmark-submit.c: work submitted one at a time
to an asyncio.TaskGroup (Python 3.11+; asyncio.gather on older ones, and
the result line says so on stderr).

    bench-python-submit.py spawn COUNT MS
        COUNT tasks, created one by one in the group, each awaits
        asyncio.sleep(MS / 1000); then the group is left (awaited).
    bench-python-submit.py chain COUNT
        a chain of COUNT tasks: each awaits asyncio.sleep(0) (a yield to
        the loop) and then creates the next in the same group.

Prints one line for benchmark-submit, from the first task created to the
group's end:

    result WALL_MS CPU_MS USER_MS SYS_MS OK FAILED FIRST_ERROR|-

and, when IOB_BENCH_SETUP_FD names a file descriptor, "setup MS" there:
the time the loop that creates the tasks took.
"""
import asyncio
import os
import resource
import sys
import time

HAS_TASKGROUP = hasattr(asyncio, "TaskGroup")
ok = 0


def cpu_ms():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime * 1e3, ru.ru_stime * 1e3


async def sleep(ms):
    global ok
    await asyncio.sleep(ms / 1000)
    ok += 1


async def link(spawn, i, n):
    global ok
    await asyncio.sleep(0)
    ok += 1
    if i + 1 < n:
        spawn(link(spawn, i + 1, n))


async def run_taskgroup(shape, count, ms):
    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        if shape == "spawn":
            for _ in range(count):
                tg.create_task(sleep(ms))
        elif count > 0:
            tg.create_task(link(tg.create_task, 0, count))
        setup = time.perf_counter() - t0
    return t0, setup


async def run_gather(shape, count, ms):
    # No TaskGroup: the tasks in a list, awaited until none is left.
    tasks = []
    t0 = time.perf_counter()
    if shape == "spawn":
        for _ in range(count):
            tasks.append(asyncio.ensure_future(sleep(ms)))
    elif count > 0:
        spawn = lambda coro: tasks.append(asyncio.ensure_future(coro))
        spawn(link(spawn, 0, count))
    setup = time.perf_counter() - t0
    done = 0
    while done < len(tasks):
        end = len(tasks)
        await asyncio.gather(*tasks[done:end])
        done = end
    return t0, setup


def main():
    args = sys.argv[1:]
    if not ((len(args) == 3 and args[0] == "spawn") or
            (len(args) == 2 and args[0] == "chain")):
        print("usage: bench-python-submit.py spawn COUNT MS | chain COUNT",
              file=sys.stderr)
        sys.exit(2)
    shape, count = args[0], int(args[1])
    ms = int(args[2]) if shape == "spawn" else 0
    if not HAS_TASKGROUP:
        print("bench-python-submit: no asyncio.TaskGroup (Python < 3.11): "
              "asyncio.gather", file=sys.stderr)
    run = run_taskgroup if HAS_TASKGROUP else run_gather
    u0, s0 = cpu_ms()
    first = "-"
    try:
        t0, setup = asyncio.run(run(shape, count, ms))
        wall = (time.perf_counter() - t0) * 1e3
    except BaseException as e:  # an ExceptionGroup from the TaskGroup
        first, wall, setup = repr(e).replace("\n", " "), 0.0, 0.0
    u1, s1 = cpu_ms()
    print(f"result {wall:.1f} {u1 - u0 + s1 - s0:.1f} {u1 - u0:.1f} "
          f"{s1 - s0:.1f} {ok} {count - ok} {first}", flush=True)
    fd = os.environ.get("IOB_BENCH_SETUP_FD")
    if fd is not None:
        os.write(int(fd), f"setup {setup * 1e3:.1f}\n".encode())


if __name__ == "__main__":
    main()
