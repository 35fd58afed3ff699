"""``nnprune assignment``: the course's student copy, its grading, and the instructor's check."""
from __future__ import annotations

import argparse
import tempfile

from nnprune.cli.outputs import check_outputs

SOURCE = "the project checkout (default: the one nnprune is installed from)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("assignment", help="student copies of the course's tasks and grading",
                       description="The algorithms a student writes are marked in the "
                                   "library (# task N.M: title ... # end task). 'make' "
                                   "writes a student copy of the project where each marked "
                                   "body raises NotImplementedError('Task N.M: ...'); "
                                   "'grade' runs each task's tests (pytest -m taskN_M) in "
                                   "a copy and scores it.",
                       examples=("nnprune assignment list",
                                 "nnprune assignment make --out student --hidden hidden",
                                 "nnprune assignment grade student --hidden hidden "
                                 "--json grades.json",
                                 "nnprune assignment check --tasks 2.1,3.3"))
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the tasks marked in the library")
    listing.add_argument("--source", metavar="DIR", help=SOURCE)
    listing.set_defaults(handler=run_list)

    make = actions.add_parser("make", help="write a student copy of the project")
    make.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder")
    make.add_argument("--tasks", metavar="IDS", help="tasks to stub, e.g. 2.3,3.1 (default: all)")
    make.add_argument("--hidden", metavar="DIR", help="also write the hidden tests here (a new "
                      "or empty folder the students never see)")
    make.add_argument("--source", metavar="DIR", help=SOURCE)
    make.set_defaults(handler=run_make)

    grade = actions.add_parser("grade", help="run each task's tests in a copy and score it")
    grade.add_argument("copy", metavar="DIR", help="a student copy (or this project)")
    grade.add_argument("--tasks", metavar="IDS", help="tasks to grade (default: all marked)")
    grade.add_argument("--hidden", metavar="DIR", help="add the hidden tests from this folder")
    grade.add_argument("--json", metavar="FILE.json", help="also write the grades as JSON")
    grade.set_defaults(handler=run_grade)

    books = actions.add_parser("notebooks", help="the tutorials as notebooks, their exercises "
                               "with nbgrader metadata")
    books.add_argument("--out", required=True, metavar="DIR", help="where to write them")
    books.add_argument("--source", metavar="DIR", help="the project checkout")
    books.set_defaults(handler=run_notebooks)

    score = actions.add_parser("score", help="grade a notebook's test cells as nbgrader "
                               "autograde does")
    score.add_argument("notebook", metavar="NOTEBOOK.ipynb")
    score.set_defaults(handler=run_score)

    check = actions.add_parser("check", help="prove the tests fit the tasks (slow: a copy and "
                               "two test runs per task)")
    check.add_argument("--tasks", metavar="IDS", help="tasks to check (default: all)")
    check.add_argument("--source", metavar="DIR", help="the project checkout")
    check.set_defaults(handler=run_check)


def run_list(args: argparse.Namespace) -> int:
    from nnprune.course.student import project_root
    from nnprune.course.tasks import find_tasks

    for task in find_tasks(project_root(args.source)).values():
        where = ", ".join(sorted({b.path for b in task.blocks}))
        needs = f" (needs {', '.join(task.needs)})" if task.needs else ""
        print(f"{task.id:<5} {task.title}{needs}\n      {where}; pytest -m {task.marker}")
    return 0


def run_make(args: argparse.Namespace) -> int:
    from nnprune.course.student import write_student_copy

    print(write_student_copy(args.out, args.tasks, args.source, args.hidden))
    return 0


def run_grade(args: argparse.Namespace) -> int:
    from nnprune.course.grading import grade, write_grade

    check_outputs({}, {"--json": args.json})
    result = grade(args.copy, args.tasks, args.hidden)
    print(result)
    if args.json:
        print(f"wrote {write_grade(result, args.json)}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from nnprune.course.grading import cross_check

    with tempfile.TemporaryDirectory() as work:
        problems = cross_check(args.source, args.tasks, work)
    for line in problems:
        print(f"problem: {line}")
    print("every task's tests fail on its stub alone and no other task's break"
          if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


def run_notebooks(args: argparse.Namespace) -> int:
    from nnprune.course.notebooks import export_tutorials

    for path in export_tutorials(args.out, args.source):
        print(f"wrote {path}")
    return 0


def run_score(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from nnprune.course.notebooks import score

    path = Path(args.notebook)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not a notebook (JSON): {err}") from None
    result = score(nb, path.resolve().parent)
    for grade_id, earned, error in result.tests:
        print(f"{grade_id}: {earned:g}" + (f"  ({error})" if error else ""))
    print(f"score: {result.earned:g} / {result.possible:g}")
    return 0
