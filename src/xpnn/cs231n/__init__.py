"""The CS231n assignment 2 package layout, backed by xpnn: port a notebook by replacing
``cs231n.`` with ``xpnn.cs231n.``.

Each module's star import gives what the assignment's module gives, including the names
notebooks receive indirectly (``from cs231n.classifiers.fc_net import *`` brings every
layer function and ``np``). Modules: ``layers``, ``layer_utils``, ``fast_layers``,
``gradient_check``, ``optim``, ``solver``, ``data_utils``, ``classifiers.fc_net``,
``classifiers.cnn``. Not ported (see ``docs/porting.md``): ``fast_layers``' internal
``*_strides``/``*_im2col``/``*_reshape`` variants, ``gradient_check``'s
``eval_numerical_gradient_blobs``/``_net`` (Caffe-style blobs), ``data_utils``'
TinyImageNet and pretrained-model loaders, and the ``im2col`` Cython extension.
"""
