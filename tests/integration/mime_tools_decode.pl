#!/usr/bin/perl
# What Perl's MIME-tools shows of each message named on the command line: the
# decoded Subject, the display name and address of each mailbox in From, To and
# Reply-To, and for each attachment its file name (Content-Disposition filename,
# Content-Type name). Prints one JSON object, file name -> values, for
# tests/integration/test_decoders.py.
#
# MIME::Parser reads the message; header text is decoded by MIME-tools' own
# MIME::WordDecoder (RFC 2047), file names come from MIME::Head's parameter reader
# (RFC 2231 continuations and charsets) and the same decoder, as
# recommended_filename() does. Mailboxes are split with Mail::Address (MailTools,
# which MIME-tools is built on); a quoted display name is unquoted as RFC 5322
# §3.2.4 says, and only an unquoted one is RFC 2047-decoded (RFC 2047 §5(3)).
use strict;
use warnings;

use Encode ();
use JSON::PP ();
use Mail::Address;
use MIME::Parser;
use MIME::WordDecoder;

my $wd = supported MIME::WordDecoder 'UTF-8';

sub unfold {
    my ($v) = @_;
    return undef unless defined $v;
    $v =~ s/\r?\n(?=[ \t])//g;
    $v =~ s/\r?\n\z//;
    return $v;
}

sub text {
    my ($v) = @_;
    return undef unless defined $v;
    return $wd->decode($v);
}

sub mailboxes {
    my ($raw) = @_;
    my @out;
    return \@out unless defined $raw;
    for my $a (Mail::Address->parse(unfold($raw))) {
        my $phrase = $a->phrase;
        my $name;
        if (!defined $phrase || $phrase eq '') {
            $name = '';
        } elsif ($phrase =~ /\A"(.*)"\z/s) {
            ($name = $1) =~ s/\\(.)/$1/gs;
            $name = Encode::decode('UTF-8', $name);
        } else {
            $name = text($phrase);
        }
        push @out, {name => $name, addr => $a->address};
    }
    return \@out;
}

my $parser = MIME::Parser->new;
$parser->output_to_core(1);
$parser->tmp_to_core(1);
$parser->decode_bodies(0);

my %result;
for my $path (@ARGV) {
    my $entity = $parser->parse_open($path) or die "cannot parse $path\n";
    my $head = $entity->head;
    my %m = (
        subject  => text(unfold($head->get('Subject'))),
        from     => mailboxes($head->get('From')),
        to       => mailboxes($head->get('To')),
        reply_to => mailboxes($head->get('Reply-To')),
        files    => [],
    );
    for my $part ($entity->parts_DFS) {
        my $h = $part->head;
        my $disposition = $h->mime_attr('content-disposition') // '';
        next unless $disposition =~ /\A(?:attachment|inline)\z/i;
        my $filename = $h->mime_attr('content-disposition.filename');
        my $name = $h->mime_attr('content-type.name');
        push @{$m{files}}, {
            filename => defined $filename ? text($filename) : undef,
            name     => defined $name ? text($name) : undef,
        };
    }
    $result{$path} = \%m;
}
print JSON::PP->new->canonical->utf8->encode(\%result), "\n";
