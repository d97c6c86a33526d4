#!/usr/bin/env python3
"""Optional: train_reference.py's augmentation against Keras' own code. `check_keras_augmentation.py [KERAS_IMAGE_PY]`

Runs Keras' `apply_affine_transform` and `flip_axis` (their source, read from the reference venv's
keras/src/legacy/preprocessing/image.py, or the file given) with scipy.ndimage, next to train_reference.py's
per-pixel `keras_affine_reference` (which its start-up self-check compares with the grid_sample implementation),
on a random 112x112x3 float image for 8 random Keras-range transforms (plus one large shear and one pure shift),
flipped and not. Needs a python with numpy and scipy; the reference venv has no scipy, so run it with another
python (e.g. Debian's python3 with python3-scipy). It does not import keras or torch.
Seen here: max |keras - reference| 7.5e-12 over the 8 cases (scipy 1.17.1, numpy 2.4.6, keras 3.15.1's source).
"""
import ast, glob, math, os, sys, types

import numpy as np
import scipy
import scipy.ndimage

HERE = os.path.dirname(os.path.abspath(__file__))
VIZLAB_HOME = os.environ.get("VIZLAB_HOME") or os.path.expanduser("~/.cache/vizlab")


def load(path, names, env):
    """Executes only the named top-level functions of a file (decorators dropped) into env."""
    tree = ast.parse(open(path).read())
    found = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in names:
            node.decorator_list = []
            exec(compile(ast.Module([node], []), path, "exec"), env)
            found.add(node.name)
    if found != set(names):
        sys.exit("check_keras_augmentation: %s lacks %s" % (path, sorted(set(names) - found)))


def main():
    if len(sys.argv) > 1:
        keras_file = sys.argv[1]
    else:
        hits = glob.glob(os.path.join(VIZLAB_HOME, "venv-ref/lib/python3*/site-packages/keras/src/legacy/preprocessing/image.py"))
        if not hits:
            sys.exit("check_keras_augmentation: no keras in %s/venv-ref; pass the path of keras' image.py" % VIZLAB_HOME)
        keras_file = hits[0]
    # Keras calls scipy.ndimage.interpolation.affine_transform (an old alias of scipy.ndimage.affine_transform).
    shim = types.SimpleNamespace(ndimage=types.SimpleNamespace(
        interpolation=types.SimpleNamespace(affine_transform=scipy.ndimage.affine_transform)))
    keras = {"np": np, "scipy": shim}
    load(keras_file, ["transform_matrix_offset_center", "apply_affine_transform", "flip_axis"], keras)
    mine = {"np": np, "math": math}
    load(os.path.join(HERE, "train_reference.py"), ["keras_matrix", "keras_affine_reference"], mine)

    rng = np.random.default_rng(7)
    s = 112
    img = rng.uniform(0, 255, (s, s, 3))
    img[20:60, 30:90] = 255.0
    img[70:100, 10:40, 1] = 0.0
    worst = 0.0
    for k in range(8):
        theta, tx, ty = rng.uniform(-40, 40), rng.uniform(-.2, .2) * s, rng.uniform(-.2, .2) * s
        shear, (zx, zy), flip = rng.uniform(-.2, .2), rng.uniform(.8, 1.2, 2), bool(k % 2)
        if k == 6:
            theta, shear = 30.0, 20.0
        if k == 7:
            tx, ty, zx, zy = 30.0, -10.0, 1.0, 1.0
        ref = keras["apply_affine_transform"](img, theta, tx, ty, shear, zx, zy, row_axis=0, col_axis=1,
                                              channel_axis=2, fill_mode="nearest", order=1)
        if flip:
            ref = keras["flip_axis"](ref, 1)
        got = mine["keras_affine_reference"](img, (theta, tx, ty, shear, zx, zy, flip))
        d = float(np.abs(ref - got).max())
        worst = max(worst, d)
        print("theta %6.1f tx %6.1f ty %6.1f shear %5.2f zx %.3f zy %.3f flip %d: max |keras - reference| %.1e"
              % (theta, tx, ty, shear, zx, zy, flip, d))
    print("worst %.1e (scipy %s, numpy %s, %s)" % (worst, scipy.__version__, np.__version__, keras_file))
    if worst > 1e-6:
        sys.exit("check_keras_augmentation: FAILED")


if __name__ == "__main__":
    main()
