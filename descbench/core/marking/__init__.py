"""The marking engine (SPEC §4), framework-free: what REC, keypoints and the marking-bias probe share.

``visual_prompts`` draws the markings (each a registered function), ``geometry`` brings a marked image to the
model's square input, ``scoring`` holds the pure-torch scoring rules, ``engine`` prepares, encodes and scores
candidates without Lightning (and runs a whole REC set: ``run_rec``), ``expressions`` holds the REC data types,
``relations`` the ReCLIP-style spatial-relation resolver, ``points`` the keypoint queries and PCK, ``bias_probe``
the bias probe's control placement and statistics.
"""
