"""Grammar pieces the two differential tests share (imported by
matching_diff.py and decoding_diff.py, which sit next to this file)."""


class CrowdedKeys:
    """Shapes crowding one index key, for the access-path rebalancing.

    The class it is mixed into provides: r (a random.Random), chance(p),
    pick(seq), CROWD_KEYS, weak_atom(avoid), ix_conjuncts(avoid),
    clean_atom(), nonindex_atom() and conj_text(parts, nest)."""

    def crowd_group(self, size):
        """-> (conjunct, column, [stage 1, stage 2, stage 3]): stage 1 are
        conjunctions of the crowded conjunct with selective ones (the first
        of them may be filed under the crowded key while it is empty),
        stage 2 shapes whose only indexable conjunct is the crowded one (its
        posting list grows past 16, 32, ...: older shapes move), stage 3
        more of both."""
        conj, col = self.pick(self.CROWD_KEYS)

        def with_selective(weak):
            parts = []
            for _ in range(1 if self.chance(0.7) else 2):
                if weak and self.chance(0.7):
                    # a conjunct of a higher fixed estimate than the crowded
                    # one's: the shape is filed under the crowded key while
                    # it is short, and moved when it is crowded
                    parts.append(self.weak_atom(avoid=(col,)))
                else:
                    parts += self.ix_conjuncts(avoid=(col,))
            if self.chance(0.2):
                parts.append(self.clean_atom())
            parts.insert(self.r.randint(0, len(parts)), conj)
            return self.conj_text(parts, self.chance(0.2))

        def alone():
            k = self.r.random()
            if k < 0.3:
                return conj
            if k < 0.85:
                parts = [conj, self.nonindex_atom()]
                self.r.shuffle(parts)
                return ' AND '.join(parts)
            return '%s AND (%s OR %s)' % (conj, self.nonindex_atom(),
                                          self.nonindex_atom())

        n1 = max(4, size * self.r.randint(15, 30) // 100)
        n2 = max(16, size * self.r.randint(25, 40) // 100)
        n3 = max(1, size - n1 - n2)
        stages = [[with_selective(self.chance(0.5)) for _ in range(n1)],
                  [alone() for _ in range(n2)],
                  [with_selective(self.chance(0.3)) if self.chance(0.8)
                   else alone() for _ in range(n3)]]
        return conj, col, stages
