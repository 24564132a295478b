"""The CS231n assignment 2 package layout, backed by xpnn: port a notebook by replacing
``cs231n.`` with ``xpnn.cs231n.``.

Each module's star import gives what the assignment's module gives, including the names
notebooks receive indirectly (``from cs231n.classifiers.fc_net import *`` brings every
layer function and ``np``). Modules: ``layers``, ``layer_utils``, ``fast_layers``,
``gradient_check``, ``optim``, ``solver``, ``data_utils``, ``vis_utils``,
``classifiers.fc_net``, ``classifiers.cnn``, and from the sequence half (the 2017-2024
NumPy edition) ``rnn_layers``, ``classifiers.rnn``, ``captioning_solver``, ``coco_utils``
and ``image_utils``, and the 2025/2026 PyTorch edition's ``rnn_layers_pytorch``,
``classifiers.rnn_pytorch`` and ``captioning_solver_pytorch``; they only re-export,
the code lives in the rest of xpnn. Not ported (see ``docs/porting.md``): ``fast_layers``'
internal ``*_strides``/``*_im2col``/``*_reshape`` variants, ``im2col.py`` and the ``im2col_cython``
extension, ``gradient_check``'s ``eval_numerical_gradient_blobs``/``_net`` (Caffe-style
blobs), ``data_utils``' ``load_pickle`` and its TinyImageNet, pretrained-model and
ImageNet-sample loaders, and ``datasets/get_datasets.sh`` (``xpnn download cifar10``).
"""
