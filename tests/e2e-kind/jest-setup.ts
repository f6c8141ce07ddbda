// e2e steps wait on a real apiserver and controllers: allow minutes, not jest's default 5 s.
jest.setTimeout(180_000);
