"""Runs SQL on chDB, the in-process engine of a current ClickHouse, for
TestQueryPackOnCurrentClickHouse. Reads a JSON object from stdin:
{"statements": [sql, ...], "queries": {name: sql}}; runs the statements in
order, then each query, and prints {"version": ..., "answers": {name: tsv}}.
A statement or query that fails exits 1 with ClickHouse's error."""
import json
import sys

from chdb import session

req = json.load(sys.stdin)
sess = session.Session()
try:
    for sql in req["statements"]:
        sess.query(sql)
    answers = {name: sess.query(sql, "TabSeparated").bytes().decode()
               for name, sql in req["queries"].items()}
    version = sess.query("SELECT version()", "TabSeparated").bytes().decode().strip()
except Exception as e:  # chdb raises its own error type, with the server's text
    print(e, file=sys.stderr)
    sys.exit(1)
finally:
    sess.close()
json.dump({"version": version, "answers": answers}, sys.stdout)
