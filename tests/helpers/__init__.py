"""What tests, the benchmarks and the history recorder share; no test module imports another.

- `cases`: a valid complaint, and waiting for a case to get somewhere;
- `rules`: the shipped rules with second-long deadlines, and the approvers' test keys;
- `serving`: a worker in this process, and the session's payload keys;
- `processes`: the `redress` command and worker as subprocesses, a free port;
- `histories`: a history as the server stores it, and every payload in it;
- `peer`: a real HTTP notifier and payment service on 127.0.0.1;
- `cfpb`: public complaint texts for the benchmarks and the report.
"""
