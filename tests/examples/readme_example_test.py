#!/usr/bin/env python3
"""The README's example cannot rot: its "## Example" C++ block must equal
examples/hello.cpp, which the build compiles and the test example_hello runs.

    readme_example_test.py README.md examples/hello.cpp

hello.cpp may open with a block of `//` comment lines (its file header); the
rest of it must be the README block, byte for byte. On a difference it prints a
unified diff (README block first) and exits 1.
"""
import difflib
import sys


def readme_block(text):
    """The lines of the first ```cpp block after the "## Example" heading."""
    lines = text.splitlines()
    try:
        start = lines.index("## Example")
        fence = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == "```cpp")
        end = next(i for i in range(fence + 1, len(lines)) if lines[i].strip() == "```")
    except (ValueError, StopIteration):
        return None
    return lines[fence + 1:end]


def example_body(text):
    """hello.cpp without its leading `//` header lines."""
    lines = text.splitlines()
    i = 0
    while i < len(lines) and lines[i].startswith("//"):
        i += 1
    return lines[i:]


def main():
    readme_path, example_path = sys.argv[1], sys.argv[2]
    with open(readme_path, encoding="utf-8") as f:
        block = readme_block(f.read())
    if block is None:
        print(f"FAIL: no ```cpp block under '## Example' in {readme_path}")
        return 1
    with open(example_path, encoding="utf-8") as f:
        body = example_body(f.read())
    if block == body:
        print(f"PASS: the README's Example block is {example_path} ({len(body)} lines)")
        return 0
    sys.stdout.writelines(difflib.unified_diff([l + "\n" for l in block], [l + "\n" for l in body],
                                               "README.md (## Example)", example_path))
    print(f"FAIL: the README's Example block and {example_path} differ: change them together")
    return 1


if __name__ == "__main__":
    sys.exit(main())
