using Akka.Configuration;
using DistSgd.Actors.Deployment;

namespace DistSgd.Actors.Tests.Deployment;

public class NodeConfigTests
{
    [Fact]
    public void The_frame_carries_the_default_models_gradient_with_room_to_spare()
    {
        long frame = NodeConfig.FrameSizeFor(235_146);
        Assert.True(frame >= 235_146 * 4 + 1024);
        Assert.Equal(4L << 20, frame);   // the 4 MiB floor
        Assert.True(NodeConfig.FrameSizeFor(10_000_000) >= 40_000_000L);
    }

    [Fact]
    public void A_model_too_large_for_any_frame_fails_with_a_message()
    {
        var error = Assert.Throws<ArgumentException>(() => NodeConfig.FrameSizeFor(400_000_000));
        Assert.Contains("400,000,000 parameters", error.Message);
        Assert.Contains("--hidden", error.Message);
    }

    [Fact]
    public void The_node_config_sets_the_frame_roles_and_keeps_the_reference_defaults()
    {
        var config = NodeConfig.Build("127.0.0.1", 2552, ["master", "worker"], 8 << 20);
        Assert.Equal(8L << 20, config.GetByteSize("akka.remote.dot-netty.tcp.maximum-frame-size"));
        Assert.Equal(["master", "worker"], config.GetStringList("akka.cluster.roles"));
        Assert.Equal(TimeSpan.FromSeconds(30), DistSgdSettings.Create(config).StepTimeout);
    }

    [Theory]
    [InlineData("distsgd.step-timeout = -1s", "distsgd.step-timeout")]
    [InlineData("distsgd.step-timeout = soon", "distsgd.step-timeout")]
    [InlineData("distsgd.start-timeout = 0s", "distsgd.start-timeout")]
    [InlineData("distsgd.standby-masters = -1", "distsgd.standby-masters")]
    [InlineData("distsgd.collective = tree", "distsgd.collective")]
    [InlineData("distsgd.collective = ring\ndistsgd.transport = akka", "distsgd.collective = ring runs on the direct transport only")]
    [InlineData("distsgd.collective = pairwise\ndistsgd.transport = akka", "distsgd.collective = pairwise runs on the direct transport only")]
    [InlineData("distsgd.debug.slowdown = 0.5", "distsgd.debug.slowdown")]
    [InlineData("distsgd.debug.slowdown = fast", "distsgd.debug.slowdown")]
    [InlineData("distsgd.debug.slow-node = -2", "distsgd.debug.slow-node")]
    public void A_bad_setting_names_its_key(string hocon, string key)
    {
        var config = ConfigurationFactory.ParseString(hocon).WithFallback(DistSgdConfig.ReferenceConfig);
        var error = Assert.Throws<ConfigurationException>(() => DistSgdSettings.Create(config));
        Assert.Contains(key, error.Message);
    }

    [Fact]
    public void A_slowdown_applies_to_the_compute_node_it_names_or_to_every_one()
    {
        var off = DistSgdSettings.Create(DistSgdConfig.ReferenceConfig);
        Assert.Equal(1, off.SlowdownAt(0));
        var one = DistSgdSettings.Create(ConfigurationFactory.ParseString("distsgd.debug { slowdown = 3, slow-node = 1 }").WithFallback(DistSgdConfig.ReferenceConfig));
        Assert.Equal([1, 3, 1], [one.SlowdownAt(0), one.SlowdownAt(1), one.SlowdownAt(2)]);
        var every = DistSgdSettings.Create(ConfigurationFactory.ParseString("distsgd.debug.slowdown = 2.5").WithFallback(DistSgdConfig.ReferenceConfig));
        Assert.Equal([2.5, 2.5], [every.SlowdownAt(0), every.SlowdownAt(5)]);
    }

    [Fact]
    public void Every_node_downs_a_crashed_node_in_seconds_by_keep_majority_and_a_file_can_slow_it_down()
    {
        var config = NodeConfig.Build("127.0.0.1", 2552, ["worker"], 4 << 20);
        Assert.Equal("keep-majority", config.GetString("akka.cluster.split-brain-resolver.active-strategy"));
        Assert.Equal(TimeSpan.FromSeconds(5), config.GetTimeSpan("akka.cluster.split-brain-resolver.stable-after"));
        Assert.Equal(TimeSpan.FromSeconds(1), config.GetTimeSpan("akka.cluster.down-removal-margin"));
        Assert.Equal(TimeSpan.FromSeconds(2), config.GetTimeSpan("akka.cluster.failure-detector.acceptable-heartbeat-pause"));
        Assert.Equal("on", config.GetString("akka.cluster.run-coordinated-shutdown-when-down"));

        var slower = NodeConfig.Build("127.0.0.1", 2552, ["worker"], 4 << 20,
            overrides: ConfigurationFactory.ParseString("akka.cluster.split-brain-resolver.stable-after = 20s"));
        Assert.Equal(TimeSpan.FromSeconds(20), slower.GetTimeSpan("akka.cluster.split-brain-resolver.stable-after"));
    }
}
