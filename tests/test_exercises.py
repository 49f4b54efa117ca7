from snn_tutorial.exercises import check


def test_check(capsys):
    assert check(None, 3) is None and "还没有作答" in capsys.readouterr().out
    assert check(3, 3) is True and "✓" in capsys.readouterr().out
    assert check(4, 3, hint="提示") is False and "提示" in capsys.readouterr().out
    assert check(0.101, 0.1, tol=0.02) is True
    assert check(0.2, 0.1, tol=0.02) is False
