"""The course: tasks marked in the library, the student copy, grading and notebooks.

- ``tasks.py``: the ``# task N.M: title`` … ``# end task`` blocks in the package's source,
  turned into ``raise NotImplementedError("Task N.M: title")`` for students and put back;
- ``student.py``: ``write_student_copy`` writes the project with the selected tasks stubbed,
  its tutorials turned into exercises and the hidden tests kept apart;
- ``grading.py``: runs each task's tests (pytest marker ``taskN_M``) against a copy and scores it;
- ``notebooks.py``: tutorials and exercises as Jupyter notebooks with nbgrader cell metadata.

The instructor's copy is this repository: its marked blocks are the solutions.
"""
