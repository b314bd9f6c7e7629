"""Power Exchange Hub: the operator command ``hub``, its settings and the simulators."""
