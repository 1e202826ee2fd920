# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
"""A word segmenter shaped like the real library whose leak pyleak was made for.

load() rebuilds two dicts from files through generators (replacing the previous dicts, so the
generator's temporaries and the old dicts die and their blocks are free for reuse), then
appends every line of a word file to self.words: the defect, the words pile up per load().

Protocol: prints {"pid": PID, "ready": true, "lines": {"splitlines": N, "parse": M}}, then for
each line read on stdin calls load() and prints {"loads": K, "words": len(words), "keys": the
dicts' keys, strs from the generator that stay}; exits when
stdin closes.
"""
import json
import os
import random
import sys
import tempfile

WORDS = 100000
PAIRS = 60000


def write_file(path, rng, n, joiner=None):
    letters = "abcdefghijklmnopqrstuvwxyz"
    with open(path, "w") as f:
        for _ in range(n):
            word = "".join(rng.choice(letters) for _ in range(rng.randint(3, 12)))
            if joiner:
                word += joiner + "".join(rng.choice(letters) for _ in range(rng.randint(2, 8)))
            f.write("%s\t%d\n" % (word, rng.randint(1, 10 ** 6)))


class Segmenter(object):
    def __init__(self, unigrams, bigrams, words):
        self.files = unigrams, bigrams, words
        self.unigrams = {}
        self.bigrams = {}
        self.words = []

    def load(self):
        self.unigrams = self.parse(self.files[0])
        self.bigrams = self.parse(self.files[1])
        with open(self.files[2]) as reader:
            text = reader.read()
            self.words.extend(text.splitlines())  # the survivors

    @staticmethod
    def parse(filename):
        with open(filename) as reader:
            lines = (line.split("\t") for line in reader)
            return dict((word, float(number)) for word, number in lines)  # temporaries


def source_line(text):
    with open(__file__) as f:
        return next(i + 1 for i, l in enumerate(f) if text in l and "source_line" not in l)


def main():
    tmp = tempfile.mkdtemp(prefix="segmenter-")
    paths = [os.path.join(tmp, n) for n in ("unigrams.txt", "bigrams.txt", "words.txt")]
    rng = random.Random(7)
    write_file(paths[0], rng, PAIRS)
    write_file(paths[1], rng, PAIRS, " ")
    with open(paths[2], "w") as f:
        f.writelines("".join(rng.choice("abcdefghijklmnopqrstuvwxyz")
                             for _ in range(rng.randint(3, 12))) + "\n" for _ in range(WORDS))
    seg = Segmenter(*paths)
    seg.load()
    print(json.dumps({"pid": os.getpid(), "ready": True, "words_per_load": WORDS,
                      "lines": {"splitlines": source_line("text.splitlines()"),
                                "parse": source_line("for word, number in lines")}}))
    sys.stdout.flush()
    loads = 1
    try:
        for _ in sys.stdin:
            seg.load()
            loads += 1
            print(json.dumps({"loads": loads, "words": len(seg.words),
                              "keys": len(seg.unigrams) + len(seg.bigrams)}))
            sys.stdout.flush()
    finally:
        for p in paths:
            os.remove(p)
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
