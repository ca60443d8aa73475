"""One grouped schedd query, as a child process of the daemon (``CondorBindings.group_jobs``).

htcondor2 holds the interpreter's lock for the whole of a schedd query: the schedd's grouped
answer for 100,000 jobs takes ~1.4 s, and meanwhile no other thread of the daemon runs, so the
cloud listing read beside it (:mod:`elastiq.runtime.observe`) could not parse its answer, nor
could a second query run.  Here the query holds this process's lock only; the daemon's thread
waits on a pipe.

Run as a script (``python schedd_query.py``), so that it needs only the bindings, not the
``elastiq`` package on the path.  Standard input: one JSON object, ``schedd`` (the schedd's
location ad, ClassAd syntax), ``constraint`` and ``projection``.  Standard output: the groups'
ads in ClassAd syntax, each followed by a NUL byte (the syntax is ASCII with every control
character escaped, so no ad holds one; ``classad2.parseAds`` on the whole output would take 15
times longer than a parse of each ad).  A query that fails exits 1 with its error, in one line,
on standard error.
"""
import json
import sys

import classad2
import htcondor2


def main() -> int:
    request = json.load(sys.stdin)
    try:
        found = htcondor2.Schedd(classad2.ClassAd(request["schedd"])).query(
            constraint=request["constraint"], projection=request["projection"],
            opts=htcondor2.QueryOpt.GroupBy)
    except Exception as exc:  # the daemon reports it: one line, not a traceback
        said = str(exc) if isinstance(exc, htcondor2.HTCondorException) else \
            f"{type(exc).__name__}: {exc}"
        print(" ".join(said.split()), file=sys.stderr)
        return 1
    write = sys.stdout.buffer.write
    for ad in found:  # one at a time: no second copy of the answer in memory
        write(f"{ad}\0".encode("ascii", "backslashreplace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
