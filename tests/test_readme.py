"""The README's Python example runs and says what it claims."""

import contextlib
import io
import pathlib
import re


def test_readme_python_example_runs():
    text = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    [code] = re.findall(r"```python\n(.*?)```", text, re.S)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    first = out.getvalue().splitlines()[0]
    assert first == "[]"
    assert '"type":"invoke"' in out.getvalue()
