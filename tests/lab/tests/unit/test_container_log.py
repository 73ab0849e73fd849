"""The lab's container log: every line stamped with the time it was written, as it comes."""

import datetime
import subprocess
import sys
import time

import pytest

from cloudhop_lab.dataplane.netns import STAMP


def _time(line):
    stamp, rest = line.split(b" ", 1)
    when = datetime.datetime.strptime(stamp.decode(), "%Y-%m-%dT%H:%M:%S.%fZ")
    return when.replace(tzinfo=datetime.timezone.utc).timestamp(), rest


@pytest.mark.timeout(30)
def test_each_line_is_stamped_when_it_is_written_not_when_the_container_ends():
    with subprocess.Popen([sys.executable, "-u", "-c", STAMP], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE) as proc:
        proc.stdin.write(b"cloudhop wg-node: kube up\n")
        proc.stdin.flush()
        first = proc.stdout.readline()  # hangs if the stamper waited for more or for EOF
        time.sleep(0.3)
        proc.stdin.write(b"cloudhop wg-node: the VPN network moved to hub 1\nno newline")
        proc.stdin.close()
        rest = proc.stdout.read().splitlines(keepends=True)
        assert proc.wait(timeout=10) == 0
    t1, text1 = _time(first)
    t2, text2 = _time(rest[0])
    t3, text3 = _time(rest[1])
    assert text1 == b"cloudhop wg-node: kube up\n"
    assert text2 == b"cloudhop wg-node: the VPN network moved to hub 1\n"
    assert text3 == b"no newline"
    assert abs(t1 - time.time()) < 30
    assert 0.25 <= t2 - t1 < 5, (t1, t2)
    assert t2 <= t3
