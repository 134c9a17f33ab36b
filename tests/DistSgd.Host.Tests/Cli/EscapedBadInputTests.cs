using DistSgd.Host.Runs;
using DistSgd.Host.Settings;
using DistSgd.Numerics.Models;

namespace DistSgd.Host.Tests.Cli;

/// <summary>
/// Bad input that used to escape the one-line rule (issue 18): each must exit 2 with exactly one line naming the flag,
/// key or file and what was wrong, before anything is written.
/// </summary>
public class EscapedBadInputTests
{
    private static readonly string[] Small = ["--dataset", "blobs", "--samples", "100", "--hidden", "4", "--epochs", "1"];

    private static void AssertOneLine(string error)
    {
        var lines = error.TrimEnd().Split('\n');
        Assert.True(lines.Length == 1, $"expected one line, found {lines.Length}:\n{error}");
        Assert.DoesNotContain("(Parameter '", error);
        Assert.DoesNotContain("   at ", error);
    }

    /// <summary>train refused with exit 2, one line holding <paramref name="expected"/>, and no result file.</summary>
    private static void AssertRefusedInOneLine(string expected, params string[] args)
    {
        using var temp = new TempFolder();
        string results = temp["run"];
        var outcome = CliRunner.Run(["train", .. args, "--out", results]);
        Assert.True(outcome.ExitCode == 2, $"exit {outcome.ExitCode}, expected 2; stderr: {outcome.Error}");
        Assert.Contains(expected, outcome.Error);
        AssertOneLine(outcome.Error);
        Assert.False(Directory.Exists(results), $"{results} was made for a refused run");
    }

    [Theory]
    [InlineData("--bogus", "1")]
    [InlineData("--seed", "ten")]
    [InlineData("--workers", "65")]
    public void A_flag_error_is_one_line_that_says_where_the_flags_are_described(string flag, string value)
    {
        var outcome = CliRunner.Run(["train", .. Small, flag, value]);
        Assert.Equal(2, outcome.ExitCode);
        AssertOneLine(outcome.Error);
        Assert.Contains("'distsgd train --help'", outcome.Error);
        Assert.Contains(flag == "--bogus" ? "--bogus" : value, outcome.Error);
    }

    [Theory]
    [InlineData("65536,65536", "--hidden: the model mlp 20-65536-65536-")]
    [InlineData("100000,100000", "--hidden: the model mlp 20-100000-100000-")]
    public void A_model_too_big_for_one_buffer_is_refused_before_anything_is_allocated(string hidden, string expected)
    {
        AssertRefusedInOneLine(expected, "--dataset", "blobs", "--samples", "100", "--epochs", "1", "--mode", "sequential", "--hidden", hidden);
        AssertRefusedInOneLine($"parameters; expected at most {Array.MaxLength:N0} (what one buffer holds)",
                               "--dataset", "blobs", "--samples", "100", "--epochs", "1", "--mode", "sequential", "--hidden", hidden);
    }

    [Fact]
    public void A_model_whose_copies_need_more_memory_than_the_machine_has_is_refused_naming_the_flag()
    {
        var spec = new ModelSpec(ModelKind.Mlp, 2, 3, [1000, 1000]);   // 1,007,003 parameters
        var sequential = BlobsSettings.Create("unused", RunMode.Sequential, 100, [1000, 1000], 1, 10);
        var cluster = sequential with { Mode = RunMode.Centralized, ComputeNodes = 8 };
        long sequentialBytes = spec.ParameterCountUnbounded * sizeof(float) * InputChecks.ParameterCopies(sequential);
        InputChecks.CheckModelSize(sequential, spec, sequentialBytes);   // just fits
        var e = Assert.Throws<UsageException>(() => InputChecks.CheckModelSize(sequential, spec, sequentialBytes - 1));
        Assert.StartsWith("--hidden: the model mlp 2-1000-1000-3 relu has 1,007,003 parameters; the run needs about", e.Message);
        // Every worker holds its own copies: what fits one process does not fit eight workers.
        Assert.Throws<UsageException>(() => InputChecks.CheckModelSize(cluster, spec, sequentialBytes));
        var softmax = new ModelSpec(ModelKind.Softmax, 2, 3);
        Assert.StartsWith("--data:", Assert.Throws<UsageException>(() => InputChecks.CheckModelSize(sequential, softmax, 1)).Message);
    }

    [Fact]
    public void The_banner_never_shows_an_overflowed_parameter_count()
    {
        var spec = new ModelSpec(ModelKind.Mlp, 2, 3, [65536, 65536]);
        Assert.Equal(3L * 65536 + 65537L * 65536 + 65537L * 3, spec.ParameterCountUnbounded);   // 4,295,426,051: past int
        Assert.Throws<ArgumentException>(() => new Model(spec, new Numerics.Tensors.NaiveKernels()));
    }

    // ---- config includes and Akka keys ---------------------------------------------------------------

    [Theory]
    [InlineData("include \"missing.conf\"", ":1: include \"missing.conf\": no such file")]
    [InlineData("distsgd.step-timeout = 5s\ninclude required(\"missing.conf\")", ":2: include \"missing.conf\": no such file")]
    [InlineData("include file(\"missing.conf\")", ":1: include \"missing.conf\": no such file")]
    [InlineData("include url(\"http://example.com/a.conf\")", ":1: only files can be included")]
    [InlineData("include classpath(\"a.conf\")", ":1: only files can be included")]
    [InlineData("include \"self.conf\"", "includes nest deeper than 16")]
    [InlineData("include \"bad-key.conf\"", "distsgd.step-timeout: expected a duration such as 30s, found 'abc'")]
    [InlineData("akka.loglevel = LOUD", ":1:6: akka.loglevel: expected one of OFF, ERROR, WARNING, INFO, DEBUG, found 'LOUD'")]
    [InlineData("akka {\n  stdout-loglevel = chatty\n}", ":2:3: akka.stdout-loglevel: expected one of OFF, ERROR, WARNING, INFO, DEBUG, found 'chatty'")]
    public void A_config_include_or_log_level_that_cannot_work_is_refused_naming_the_file_and_line(string hocon, string expected)
    {
        using var temp = new TempFolder();
        File.WriteAllText(temp["self.conf"], "include \"self.conf\"\n");
        File.WriteAllText(temp["bad-key.conf"], "distsgd.step-timeout = abc\n");
        string config = temp["run.conf"];
        File.WriteAllText(config, hocon);
        AssertRefusedInOneLine(expected, [.. Small, "--mode", "sequential", "--config", config]);
    }

    [Fact]
    public void An_include_is_read_relative_to_the_including_file_and_nested_includes_too()
    {
        using var temp = new TempFolder();
        Directory.CreateDirectory(temp["conf"]);
        File.WriteAllText(temp["conf/base.conf"], "distsgd.step-timeout = 7s\ninclude required(\"more.conf\")\n");
        File.WriteAllText(temp["conf/more.conf"], "distsgd.start-timeout = 9s\n");
        File.WriteAllText(temp["conf/run.conf"], "include \"base.conf\"\nakka.loglevel = WARNING\nakka.include-x = 1\nakka.y {\n  include = 2\n}\n");
        var config = HoconFile.Load(temp["conf/run.conf"])!;
        Assert.Equal("7s", config.GetString("distsgd.step-timeout"));
        Assert.Equal("9s", config.GetString("distsgd.start-timeout"));
        Assert.Equal("WARNING", config.GetString("akka.loglevel"));
        Assert.Equal(2, config.GetInt("akka.y.include"));   // a key named include is a key, not an include
    }

    // ---- results folder, data and model files --------------------------------------------------------

    [Fact]
    public void An_empty_out_is_refused_naming_the_flag()
    {
        var outcome = CliRunner.Run(["train", .. Small, "--mode", "sequential", "--out", ""]);
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains("--out: expected a folder for the results, found ''", outcome.Error);
        AssertOneLine(outcome.Error);
    }

    [Fact]
    public void An_out_where_nothing_can_be_written_is_refused_before_training()
    {
        // /proc exists on Linux and takes no new files, even for root: the same as a read-only file system.
        var outcome = CliRunner.Run(["train", .. Small, "--mode", "sequential", "--out", "/proc/distsgd-run"]);
        Assert.True(outcome.ExitCode == 2, $"exit {outcome.ExitCode}; stderr: {outcome.Error}");
        Assert.Contains("--out: cannot write the results folder /proc/distsgd-run: nothing can be written in /proc", outcome.Error);
        AssertOneLine(outcome.Error);
        Assert.DoesNotContain("train loss", outcome.Output);
    }

    [Fact]
    public void A_one_row_csv_is_refused_naming_the_file_without_dotnet_text()
    {
        using var temp = new TempFolder();
        File.WriteAllText(temp["one.csv"], "0,1.5\n");
        AssertRefusedInOneLine("expected at least 2 samples to split into a train and a test set, found 1",
                               "--mode", "sequential", "--data", temp["one.csv"], "--hidden", "4", "--epochs", "1", "--batch-size", "1");
    }

    [Fact]
    public void A_directory_given_as_a_model_is_refused_naming_it()
    {
        using var temp = new TempFolder();
        Directory.CreateDirectory(temp["model.bin"]);
        var outcome = CliRunner.Run("eval", "--model", temp["model.bin"], "--dataset", "blobs", "--samples", "100");
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains($"{temp["model.bin"]}: expected a model file, found a directory", outcome.Error);
        AssertOneLine(outcome.Error);
    }
}
