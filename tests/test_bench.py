"""bench 的目标对照：每一项按方向与目标值判定，没测的、没达到的都如实写出。"""

import math

from snn_tutorial import bench


def test_target_report_marks_each_target():
    lines = bench.target_report({"speedup": 1.5, "time_to_99": 45.0, "shipped_acc": 0.9961, "eval_seconds": 7.2})
    assert len(lines) == len(bench.TARGETS)
    text = "\n".join(lines)
    assert "✗ (b) / (a) 训练吞吐量：1.50 倍（目标 ≥ 2.00 倍）" in text
    assert "✓ 快速配方训练到测试准确率 ≥ 99.0% 的纯训练时间：45 秒（目标 ≤ 60 秒）" in text
    assert "✗ 随包权重的测试准确率：99.61%（目标 ≥ 99.70%）" in text
    assert "✗ 用随包权重评估全部 10,000 张测试图：7.2 秒（目标 ≤ 5.0 秒）" in text


def test_target_report_unmeasured_and_unreached():
    lines = bench.target_report({"speedup": 2.5, "time_to_99": math.inf})
    assert lines[0].startswith("  ✓")
    assert "✗ 快速配方训练到测试准确率 ≥ 99.0% 的纯训练时间：未达到" in lines[1]
    assert "未测" in lines[2] and "未测" in lines[3]
